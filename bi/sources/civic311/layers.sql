-- Each city's area layers (dim_area), labelled; `mapped` when its areas have shapes
-- (boundary layers and H3 cells; a ZIP has none). Boundary layers rank first.
select distinct
    areas.city_id,
    areas.layer,
    areas.city_id || '/' || areas.layer as city_layer,
    cities.city_name || ': ' || areas.layer_label as city_layer_label,
    areas.layer <> 'zip' as mapped,
    case areas.layer when 'zip' then 1 when 'h3' then 2 else 0 end as layer_rank
from marts.dim_area as areas
join marts.dim_city as cities on areas.city_id = cities.city_id
where areas.area_type <> 'unlocated'
