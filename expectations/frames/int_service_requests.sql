-- intermediate.int_service_requests: the requests whose change stamp
-- (updated_at) falls in the run's window, widened by each city's lookback, and
-- any request without one. No names or free text: the sample values a failure
-- shows end up in the Dagster UI. Request times and points are judged by the
-- dbt test assert_requests_are_plausible, which a plain dbt build runs too.
select
    city_id,
    request_id,
    requested_at,
    closed_at,
    updated_at,
    status

from intermediate.int_service_requests
where updated_at is null
    or (
        updated_at >= $start - coalesce($lookback_hours[city_id], 0) * interval 1 hour
        and updated_at < $end
    )
