{% snapshot snp_service_requests %}

{#- Every version of every request that civic311 has seen: a new row whenever
    a request's status, the city's status word, its department or its closing
    time changes between loads. A run reads the requests that changed in its
    partition window (all of them without a window); requests outside it keep
    their current version. Versions are stamped with the source's own change
    time (updated_at), so history does not depend on when dbt ran. -#}
{{
    config(
        unique_key=['city_id', 'request_id'],
        strategy='check',
        check_cols=['status', 'source_status', 'department', 'closed_at'],
        updated_at='version_at',
        hard_deletes='ignore',
    )
}}

select
    city_id,
    request_id,
    requested_at,
    status,
    source_status,
    department,
    closed_at,
    -- UTC wall time: dbt keeps its validity columns as plain timestamps
    timezone('UTC', coalesce(updated_at, loaded_at)) as version_at

from {{ ref('int_service_requests') }}
where {{ changed_in_window('updated_at', always=true) }}

{% endsnapshot %}
