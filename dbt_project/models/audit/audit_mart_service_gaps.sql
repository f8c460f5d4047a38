-- mart_service_gaps against fct_service_requests: every row, with the requests
-- its (city, layer, category, month) holds over all areas of the layer and the
-- requests the facts hold for that (city, category, month), plus a row (in_mart
-- false) for every such group the mart lacks in one of the city's layers
-- (dim_area). Every layer counts each request of its city once.
with

{{ audit_area_layers('mart_service_gaps', 'requested_month') }},

final as (

    select
        {{- audit_area_counts('requested_month') }},
        mart.counted_requests,
        mart.excluded_staff_initiated,
        mart.excluded_closed_on_creation,
        (
            mart.counted_requests + mart.excluded_staff_initiated + mart.excluded_closed_on_creation
            <= mart.requests
        ) as exclusions_within_requests,
        mart.open_requests,
        mart.future_dated_requests,
        mart.median_hours_to_close,
        mart.km_median_hours_to_close,
        mart.city_median_hours_to_close,
        mart.city_km_median_hours_to_close,
        mart.gap_index,
        mart.gap_months_in_last_4,
        -- an as-of, where shown, is the city's; a settled row with open requests
        -- settled by then (null, the check would skip it)
        case
            when mart.as_of is not null then mart.as_of = cities.as_of and mart.figures_settled_at is null
            when mart.open_requests > 0 then coalesce(mart.figures_settled_at <= cities.as_of, false)
            else coalesce(mart.figures_settled_at <= cities.as_of, true)
        end as as_of_is_the_citys

    {{ audit_mart_beside_facts(['city_id', 'layer', 'category_id', 'requested_month']) }}
    left join {{ ref('dim_city') }} as cities
        on mart.city_id = cities.city_id

)

select * from final
