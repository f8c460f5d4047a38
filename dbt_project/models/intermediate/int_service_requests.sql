{#- The union point of every city's staging model, in the canonical schema.
    Each city added to the registry adds its staging model here. -#}
{%- set cities = ['stg_nyc__service_requests'] -%}

with

unioned as (

    {% for staging_model in cities %}
    select
        city_id,
        request_id,
        requested_at,
        requested_at_local,
        closed_at,
        closed_at_local,
        updated_at,
        status,
        source_status,
        department,
        service_type,
        descriptor,
        zip,
        latitude,
        longitude,
        channel
    from {{ ref(staging_model) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from unioned
