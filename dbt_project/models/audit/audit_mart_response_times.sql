-- mart_response_times against fct_service_requests: every row, with the
-- requests the facts hold for its (city, department, category, month), plus a
-- row (in_mart false) for every such group the mart lacks.
{%- set keys = ['city_id', 'department_id', 'category_id', 'requested_month'] %}
with

mart as (

    select * from {{ ref('mart_response_times') }}

),

{{ audit_facts(keys) }},

final as (

    select
        {{- audit_response_time_counts(keys) }},
        {{ audit_response_time_durations() }},
        {{ audit_response_time_backlog() }}

    {{ audit_mart_beside_facts(keys) }}
    left join {{ ref('dim_city') }} as cities
        on mart.city_id = cities.city_id

)

select * from final
