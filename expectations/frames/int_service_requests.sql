-- intermediate.int_service_requests: the requests whose change stamp
-- (updated_at) falls in the run's window, widened by each city's lookback, and
-- any request without one. No names or free text: the sample values a failure
-- shows end up in the Dagster UI.
with

requests as (

    select
        city_id,
        request_id,
        requested_at,
        closed_at,
        updated_at,
        loaded_at,
        status,
        latitude,
        longitude

    from intermediate.int_service_requests
    where updated_at is null
        or (
            updated_at >= $start - coalesce($lookback_hours[city_id], 0) * interval 1 hour
            and updated_at < $end
        )

),

-- a city without boundary layers: the middle of every request it has placed
city_medians as (

    select requests.city_id, median(requests.latitude) as latitude, median(requests.longitude) as longitude
    from intermediate.int_service_requests as requests
    anti join boundary_boxes on requests.city_id = boundary_boxes.city_id
    where requests.latitude is not null and requests.longitude is not null
    group by requests.city_id

),

-- the boundary layers' box where the city has them, else 0.5 degrees (about 55 km)
-- around its median point
city_boxes as (

    select city_id, min_latitude, max_latitude, min_longitude, max_longitude
    from boundary_boxes

    union all

    select
        city_id,
        latitude - 0.5 as min_latitude,
        latitude + 0.5 as max_latitude,
        longitude - 0.5 as min_longitude,
        longitude + 0.5 as max_longitude

    from city_medians

),

final as (

    select
        requests.city_id,
        requests.request_id,
        requests.requested_at,
        -- how far the request lies after its load (negative: before it)
        date_diff('second', requests.loaded_at, requests.requested_at) / 86400.0
            as requested_at_days_after_load,
        requests.closed_at,
        requests.updated_at,
        requests.status,
        requests.latitude,
        requests.longitude,
        case
            when requests.latitude is not null and requests.longitude is not null
                then requests.latitude between city_boxes.min_latitude and city_boxes.max_latitude
                and requests.longitude between city_boxes.min_longitude and city_boxes.max_longitude
        end as inside_city_bbox

    from requests
    left join city_boxes on requests.city_id = city_boxes.city_id

)

select * from final
