-- Each city's bounding box from its boundary layers (geography.boundaries),
-- padded by 0.05 degrees (about 5 km) so that a request geocoded to a street on
-- the city line still falls inside. Prepared as the temporary table
-- boundary_boxes for the frames that name it (needs DuckDB spatial); empty when
-- no boundary layer has been loaded yet.
with

extents as (

    select city_id, st_extent_agg(st_geomfromwkb(geometry_wkb)) as extent
    from geography.boundaries
    group by city_id

)

select
    city_id,
    st_ymin(extent) - 0.05 as min_latitude,
    st_ymax(extent) + 0.05 as max_latitude,
    st_xmin(extent) - 0.05 as min_longitude,
    st_xmax(extent) + 0.05 as max_longitude

from extents
