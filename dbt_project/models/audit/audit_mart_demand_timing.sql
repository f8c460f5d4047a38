-- mart_demand_timing against fct_service_requests: every cell, with the cells
-- and demand requests of its (city, category) and the demand requests the facts
-- hold for it (requested_at_local known), plus a row (in_mart false) for every
-- (city, category) of the facts the mart lacks. Demand leaves out
-- information-only requests, duplicates and requests dated before 2000
-- (macros/demand.sql).
{%- set keys = ['city_id', 'category_id'] %}
with

mart as (

    select
        *,
        count(*) over (partition by city_id, category_id) as cells_in_group,
        sum(requests) over (partition by city_id, category_id) as group_requests

    from {{ ref('mart_demand_timing') }}

),

facts as (

    select
        city_id,
        category_id,
        count(*) filter (where {{ is_demand() }} and requested_at_local is not null) as fct_demand_requests

    from {{ ref('fct_service_requests') }}
    group by city_id, category_id

),

final as (

    select
        {{- audit_keys(keys) }}
        mart.hour_of_week,
        mart.day_of_week,
        mart.hour_of_day,
        mart.city_id is not null as in_mart,
        mart.cells_in_group,
        mart.requests,
        mart.staff_initiated_requests,
        mart.closed_on_creation_requests,
        mart.staff_initiated_requests + mart.closed_on_creation_requests <= mart.requests
            as flagged_within_requests,
        mart.group_requests,
        coalesce(facts.fct_demand_requests, 0) as fct_demand_requests,
        mart.share_of_week,
        mart.weeks_observed

    {{ audit_mart_beside_facts(keys) }}

)

select * from final
