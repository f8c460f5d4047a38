-- marts.mart_hotspots against marts.fct_service_requests: every row, with the
-- demand requests its (city, layer, category, week) holds over all areas of the
-- layer and the demand requests the facts hold for that (city, category, week),
-- plus a row (in_mart false) for every such group the mart lacks in one of the
-- city's layers (marts.dim_area). Demand leaves out information-only requests,
-- duplicates and requests dated before 2000 (macros/demand.sql).
with

mart as (

    select
        *,
        sum(requests) over (partition by city_id, layer, category_id, requested_week) as layer_requests

    from marts.mart_hotspots

),

layers as (

    select distinct city_id, layer
    from marts.dim_area

),

fact_groups as (

    select city_id, category_id, requested_week, count(*) as fct_requests
    from marts.fct_service_requests
    where not coalesce(is_information_only, false)
        and not is_duplicate
        and requested_at >= timestamptz '2000-01-01 00:00:00+00'
    group by city_id, category_id, requested_week

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
        coalesce(mart.requested_week, facts.requested_week) as requested_week,
        mart.city_id is not null as in_mart,
        mart.requests,
        mart.layer_requests,
        coalesce(facts.fct_requests, 0) as fct_requests,
        mart.baseline_requests,
        mart.baseline_mean,
        mart.poisson_lambda,
        mart.poisson_p,
        -- an emerging week needs a full baseline
        not mart.is_emerging or mart.has_full_baseline as emerging_with_full_baseline

    from mart
    full join facts
        on mart.city_id = facts.city_id
        and mart.layer = facts.layer
        and mart.category_id = facts.category_id
        and mart.requested_week = facts.requested_week

)

select * from final
