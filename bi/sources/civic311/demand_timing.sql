-- Demand requests per city, category and hour of the week (mart_demand_timing).
select city_id, category_id, hour_of_week, day_of_week, day_name, hour_of_day, requests, weeks_observed
from marts.mart_demand_timing
