-- The emerging area-weeks of mart_hotspots (is_emerging), with the area's name; one row
-- of nulls when there is none (as in handoffs.sql: Evidence writes no empty table).
with emerging as (
    select
        hotspots.city_id,
        hotspots.layer,
        hotspots.area_id,
        areas.area_name,
        hotspots.category_id,
        hotspots.requested_week,
        hotspots.requests,
        hotspots.baseline_mean,
        hotspots.poisson_p
    from marts.mart_hotspots as hotspots
    left join marts.dim_area as areas
        on hotspots.city_id = areas.city_id and hotspots.layer = areas.layer
        and hotspots.area_id = areas.area_id
    where hotspots.is_emerging
)
select * from emerging
union all by name
select null as city_id where not exists (select 1 from emerging)
