{#- The canonical requests are plausible, city by city, in the run's window (every
    request on a plain `dbt build`). One row per (city, rule) broken by more than 1%
    of the city's requests it applies to:
      requested_before_1990       request time before 1990 (a wrong century, epoch
                                  seconds read as milliseconds)
      requested_in_future         request time over a day after the load (a local
                                  time read as UTC, a day/month swap)
      closed_without_valid_time   closed, with no closing time, or one before 1990
                                  or over a day after the load
      outside_city_box            located outside the registry's box (bbox) padded
                                  by 0.05 degrees (swapped or shifted coordinates)
    Thresholds apply per city, never pooled: a small city's broken feed fails
    although a large city's good rows fill the window. Isolated bad rows stay
    below 1% and are flagged downstream instead (fct_service_requests'
    exclusion_reason, mart_cross_department.future_dated_requests). -#}
{{ config(severity='error', meta={'dagster': {'ref': {'name': 'int_service_requests'}}}) }}

{% set implausible %}
with

requests as (

    select city_id, status, requested_at, closed_at, loaded_at, latitude, longitude
    from {{ ref('int_service_requests') }}
    where {{ changed_in_window('updated_at', always=true) }}

),

boxes as (

    select
        city_id,
        south - 0.05 as min_latitude,
        north + 0.05 as max_latitude,
        west - 0.05 as min_longitude,
        east + 0.05 as max_longitude

    from {{ ref('cities') }}

),

judged as (

    select
        requests.city_id,
        requests.requested_at < timestamptz '1990-01-01 00:00:00+00' as requested_before_1990,
        requests.requested_at > requests.loaded_at + interval 1 day as requested_in_future,
        requests.status = 'closed' as is_closed,
        requests.status = 'closed' and (
            requests.closed_at is null
            or requests.closed_at < timestamptz '1990-01-01 00:00:00+00'
            or requests.closed_at > requests.loaded_at + interval 1 day
        ) as closed_without_valid_time,
        requests.latitude is not null and requests.longitude is not null as is_located,
        not (
            requests.latitude between boxes.min_latitude and boxes.max_latitude
            and requests.longitude between boxes.min_longitude and boxes.max_longitude
        ) as outside_city_box

    from requests
    left join boxes on requests.city_id = boxes.city_id

),

counted as (

    select
        city_id,
        count(*) as requests,
        count(*) filter (where requested_before_1990) as requested_before_1990,
        count(*) filter (where requested_in_future) as requested_in_future,
        count(*) filter (where is_closed) as closed_requests,
        count(*) filter (where closed_without_valid_time) as closed_without_valid_time,
        count(*) filter (where is_located) as located_requests,
        count(*) filter (where is_located and outside_city_box) as outside_city_box

    from judged
    group by city_id

),

rules as (

    select city_id, 'requested_before_1990' as rule, requested_before_1990 as breaking, requests as out_of
    from counted
    union all
    select city_id, 'requested_in_future', requested_in_future, requests
    from counted
    union all
    select city_id, 'closed_without_valid_time', closed_without_valid_time, closed_requests
    from counted
    union all
    select city_id, 'outside_city_box', outside_city_box, located_requests
    from counted

),

final as (

    select city_id, rule, breaking, out_of, round(breaking / out_of, 4) as share
    from rules
    where breaking > 0.01 * out_of

)

select * from final
order by city_id, rule
{% endset %}

{{ log_rows(implausible, 'implausible requests') }}
{{ implausible }}
