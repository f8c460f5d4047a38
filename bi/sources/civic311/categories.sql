-- Category labels (dim_service_type keeps one name per category).
select category_id, min(category_name) as category_name
from marts.dim_service_type
group by category_id
