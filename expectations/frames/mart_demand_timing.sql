-- marts.mart_demand_timing against marts.fct_service_requests: every cell, with
-- the cells and demand requests of its (city, category) and the demand requests
-- the facts hold for it (requested_at_local known), plus a row (in_mart false)
-- for every (city, category) of the facts the mart lacks. Demand leaves out
-- information-only requests, duplicates and requests dated before 2000.
with

mart as (

    select
        *,
        count(*) over (partition by city_id, category_id) as cells_in_group,
        sum(requests) over (partition by city_id, category_id) as group_requests

    from marts.mart_demand_timing

),

facts as (

    select
        city_id,
        category_id,
        count(*) filter (
            where not coalesce(is_information_only, false)
                and not is_duplicate
                and requested_at >= timestamptz '2000-01-01 00:00:00+00'
                and requested_at_local is not null
        ) as fct_demand_requests

    from marts.fct_service_requests
    group by city_id, category_id

),

final as (

    select
        coalesce(mart.city_id, facts.city_id) as city_id,
        coalesce(mart.category_id, facts.category_id) as category_id,
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

    from mart
    full join facts
        on mart.city_id = facts.city_id
        and mart.category_id = facts.category_id

)

select * from final
