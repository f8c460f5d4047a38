-- Per city, layer and week of mart_hotspots: area-weeks tested (with a full baseline) and
-- found emerging, so a page can tell "none emerging" from "too little history to test".
select
    city_id,
    layer,
    requested_week,
    count(*) filter (where has_full_baseline) as tested_area_weeks,
    count(*) filter (where is_emerging) as emerging_area_weeks
from marts.mart_hotspots
group by city_id, layer, requested_week
