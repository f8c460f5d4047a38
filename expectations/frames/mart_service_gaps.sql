-- marts.mart_service_gaps against marts.fct_service_requests: every row, with
-- the requests its (city, layer, category, month) holds over all areas of the
-- layer and the requests the facts hold for that (city, category, month), plus a
-- row (in_mart false) for every such group the mart lacks in one of the city's
-- layers (marts.dim_area). Every layer counts each request of its city once.
with

mart as (

    select
        *,
        sum(requests) over (partition by city_id, layer, category_id, requested_month) as layer_requests

    from marts.mart_service_gaps

),

layers as (

    select distinct city_id, layer
    from marts.dim_area

),

fact_groups as (

    select city_id, category_id, requested_month, count(*) as fct_requests
    from marts.fct_service_requests
    group by city_id, category_id, requested_month

),

facts as (

    select fact_groups.*, layers.layer
    from fact_groups
    inner join layers on fact_groups.city_id = layers.city_id

),

final as (

    select
        coalesce(mart.city_id, facts.city_id) as city_id,
        coalesce(mart.layer, facts.layer) as layer,
        mart.area_id,
        coalesce(mart.category_id, facts.category_id) as category_id,
        coalesce(mart.requested_month, facts.requested_month) as requested_month,
        mart.city_id is not null as in_mart,
        mart.requests,
        mart.layer_requests,
        coalesce(facts.fct_requests, 0) as fct_requests,
        mart.counted_requests,
        mart.excluded_staff_initiated,
        mart.excluded_closed_on_creation,
        mart.counted_requests + mart.excluded_staff_initiated + mart.excluded_closed_on_creation
            <= mart.requests as exclusions_within_requests,
        mart.open_requests,
        mart.future_dated_requests,
        mart.median_hours_to_close,
        mart.km_median_hours_to_close,
        mart.city_median_hours_to_close,
        mart.city_km_median_hours_to_close,
        mart.gap_index,
        mart.gap_months_in_last_4,
        -- an as-of, where shown, is the city's
        case
            when mart.as_of is null then true
            else mart.as_of = cities.as_of
        end as as_of_is_the_citys

    from mart
    full join facts
        on mart.city_id = facts.city_id
        and mart.layer = facts.layer
        and mart.category_id = facts.category_id
        and mart.requested_month = facts.requested_month
    left join marts.dim_city as cities
        on mart.city_id = cities.city_id

)

select * from final
