-- marts.mart_response_times_by_type against marts.fct_service_requests and
-- marts.mart_response_times: every row, with the requests the facts hold for its
-- (city, department, service type, month), and, in the row's requests column's
-- stead, the requests mart_response_times holds for its (city, department,
-- category, month) less those of the category's other types in the same group;
-- plus a row (in_mart false) for every such group of the facts the mart lacks.
with

mart as (

    select
        *,
        sum(requests) over (
            partition by city_id, department_id, category_id, requested_month
        ) as category_type_requests

    from marts.mart_response_times_by_type

),

facts as (

    select city_id, department_id, service_type_id, requested_month, count(*) as fct_requests
    from marts.fct_service_requests
    group by city_id, department_id, service_type_id, requested_month

),

final as (

    select
        coalesce(mart.city_id, facts.city_id) as city_id,
        coalesce(mart.department_id, facts.department_id) as department_id,
        coalesce(mart.service_type_id, facts.service_type_id) as service_type_id,
        coalesce(mart.requested_month, facts.requested_month) as requested_month,
        mart.city_id is not null as in_mart,
        coalesce(facts.fct_requests, 0) as fct_requests,
        mart.requests,
        mart.counted_requests
            + mart.excluded_information_only
            + mart.excluded_duplicate
            + mart.excluded_invalid_duration
            + mart.excluded_staff_initiated
            + mart.excluded_closed_on_creation as counted_plus_excluded,
        -- the category's requests by mart_response_times, less the other types' here:
        -- equal to requests exactly when the types add up to the category
        pooled.requests - (mart.category_type_requests - mart.requests) as category_requests_share,
        mart.counted_requests,
        mart.valid_closed_requests,
        mart.median_hours_to_close,
        mart.p90_hours_to_close,
        mart.km_median_hours_to_close,
        mart.q1_hours_to_close,
        mart.q3_hours_to_close,
        mart.min_hours_to_close,
        mart.max_hours_to_close,
        mart.outlier_requests,
        mart.open_requests,
        mart.open_0_1_days
            + mart.open_1_3_days
            + mart.open_3_7_days
            + mart.open_7_30_days
            + mart.open_30_plus_days as open_in_age_buckets,
        mart.sla_requests,
        mart.closed_within_sla_requests,
        mart.pct_closed_within_sla,
        case
            when mart.city_id is null then null
            when mart.open_requests > 0 then mart.as_of is not distinct from cities.as_of
            else mart.as_of is null
        end as as_of_shown_when_open

    from mart
    full join facts
        on mart.city_id = facts.city_id
        and mart.department_id = facts.department_id
        and mart.service_type_id = facts.service_type_id
        and mart.requested_month = facts.requested_month
    left join marts.mart_response_times as pooled
        on mart.city_id = pooled.city_id
        and mart.department_id = pooled.department_id
        and mart.category_id is not distinct from pooled.category_id
        and mart.requested_month = pooled.requested_month
    left join marts.dim_city as cities
        on mart.city_id = cities.city_id

)

select * from final
