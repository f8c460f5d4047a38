-- int_service_requests as its GX suite reads it: keys, times and status, no
-- names or free text (the sample values a failure shows end up in the Dagster
-- UI). The check keeps the rows whose change stamp (updated_at) falls in the
-- run's window, widened by each city's lookback, and any without one.
select
    city_id,
    request_id,
    requested_at,
    closed_at,
    updated_at,
    status

from {{ ref('int_service_requests') }}
