-- marts.mart_response_times against marts.fct_service_requests: every row, with
-- the requests the facts hold for its (city, department, category, month), plus
-- a row (in_mart false) for every such group the mart lacks.
with

mart as (

    select * from marts.mart_response_times

),

facts as (

    select city_id, department_id, category_id, requested_month, count(*) as fct_requests
    from marts.fct_service_requests
    group by city_id, department_id, category_id, requested_month

),

final as (

    select
        coalesce(mart.city_id, facts.city_id) as city_id,
        coalesce(mart.department_id, facts.department_id) as department_id,
        coalesce(mart.category_id, facts.category_id) as category_id,
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
        mart.counted_requests,
        mart.valid_closed_requests,
        mart.median_hours_to_close,
        mart.p90_hours_to_close,
        mart.km_median_hours_to_close,
        mart.open_requests,
        mart.open_0_1_days
            + mart.open_1_3_days
            + mart.open_3_7_days
            + mart.open_7_30_days
            + mart.open_30_plus_days as open_in_age_buckets,
        mart.sla_requests,
        mart.closed_within_sla_requests,
        mart.pct_closed_within_sla,
        -- the city's as-of on exactly the groups with open requests
        case
            when mart.city_id is null then null
            when mart.open_requests > 0 then mart.as_of is not distinct from cities.as_of
            else mart.as_of is null
        end as as_of_shown_when_open

    from mart
    full join facts
        on mart.city_id = facts.city_id
        and mart.department_id = facts.department_id
        and mart.category_id = facts.category_id
        and mart.requested_month = facts.requested_month
    left join marts.dim_city as cities
        on mart.city_id = cities.city_id

)

select * from final
