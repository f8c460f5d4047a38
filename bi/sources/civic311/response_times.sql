-- Response times by city, department, category and month (mart_response_times).
select
    response.city_id,
    response.department_id,
    coalesce(departments.department_name, response.department_id) as department_name,
    response.category_id,
    response.requested_month,
    response.requests,
    response.counted_requests,
    response.valid_closed_requests,
    response.open_requests,
    response.median_hours_to_close,
    response.km_median_hours_to_close,
    response.as_of
from marts.mart_response_times as response
left join marts.dim_department as departments
    on response.department_id = departments.department_id
