-- The latest month of each city and layer in mart_service_gaps, with the area's name
-- and the key of its shape in static/generated/areas.geojson (tooling/bi.py).
with latest as (
    select city_id, layer, max(requested_month) as requested_month
    from marts.mart_service_gaps
    group by city_id, layer
)
select
    gaps.city_id,
    gaps.layer,
    gaps.area_id,
    gaps.city_id || '/' || gaps.layer || '/' || gaps.area_id as area_key,
    areas.area_name,
    gaps.category_id,
    gaps.requested_month,
    gaps.counted_requests,
    gaps.open_requests,
    gaps.km_median_hours_to_close,
    gaps.city_km_median_hours_to_close,
    gaps.median_hours_to_close,
    gaps.city_median_hours_to_close,
    gaps.gap_index,
    gaps.is_gap,
    gaps.chronically_underserved
from marts.mart_service_gaps as gaps
join latest using (city_id, layer, requested_month)
left join marts.dim_area as areas
    on gaps.city_id = areas.city_id and gaps.layer = areas.layer and gaps.area_id = areas.area_id
