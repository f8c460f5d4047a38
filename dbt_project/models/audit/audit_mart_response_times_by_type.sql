-- mart_response_times_by_type against fct_service_requests and
-- mart_response_times: every row, with the requests the facts hold for its
-- (city, department, service type, month), and the requests mart_response_times
-- holds for its (city, department, category, month) less those of the
-- category's other types in the same group; plus a row (in_mart false) for
-- every such group of the facts the mart lacks.
{%- set keys = ['city_id', 'department_id', 'service_type_id', 'requested_month'] %}
with

mart as (

    select
        *,
        sum(requests) over (
            partition by city_id, department_id, category_id, requested_month
        ) as category_type_requests

    from {{ ref('mart_response_times_by_type') }}

),

{{ audit_facts(keys) }},

final as (

    select
        {{- audit_response_time_counts(keys) }},
        -- the category's requests by mart_response_times, less the other types' here:
        -- equal to requests exactly when the types add up to the category
        pooled.requests - (mart.category_type_requests - mart.requests) as category_requests_share,
        {{ audit_response_time_durations() }},
        mart.q1_hours_to_close,
        mart.q3_hours_to_close,
        mart.min_hours_to_close,
        mart.max_hours_to_close,
        mart.outlier_requests,
        {{ audit_response_time_backlog() }}

    {{ audit_mart_beside_facts(keys) }}
    left join {{ ref('mart_response_times') }} as pooled
        on mart.city_id = pooled.city_id
            and mart.department_id = pooled.department_id
            and mart.category_id is not distinct from pooled.category_id
            and mart.requested_month = pooled.requested_month
    left join {{ ref('dim_city') }} as cities
        on mart.city_id = cities.city_id

)

select * from final
