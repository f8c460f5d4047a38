-- mart_hotspots against fct_service_requests: every row, with the demand
-- requests its (city, layer, category, week) holds over all areas of the layer
-- and the demand requests the facts hold for that (city, category, week), plus a
-- row (in_mart false) for every such group the mart lacks in one of the city's
-- layers (dim_area). Demand leaves out information-only requests, duplicates and
-- requests dated before 2000 (macros/demand.sql).
with

{{ audit_area_layers('mart_hotspots', 'requested_week', demand_only=true) }},

final as (

    select
        {{- audit_area_counts('requested_week') }},
        mart.baseline_requests,
        mart.baseline_mean,
        mart.poisson_lambda,
        mart.poisson_p,
        -- an emerging week needs a full baseline
        not mart.is_emerging or mart.has_full_baseline as emerging_with_full_baseline

    {{ audit_mart_beside_facts(['city_id', 'layer', 'category_id', 'requested_week']) }}

)

select * from final
