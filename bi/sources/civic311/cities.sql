-- City names (dim_city).
select city_id, city_name
from marts.dim_city
