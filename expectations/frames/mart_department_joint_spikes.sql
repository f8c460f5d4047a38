-- marts.mart_department_joint_spikes against marts.fct_service_requests: every
-- row, with the number of departments it lists and the demand requests the
-- facts hold for its (city, area, week). Rows exist only for joint spikes, so
-- there is no group the mart must have. Demand leaves out information-only
-- requests, duplicates and requests dated before 2000.
with

mart as (

    select * from marts.mart_department_joint_spikes

),

facts as (

    select city_id, area_id, requested_week, count(*) as fct_area_requests
    from marts.fct_service_requests
    where not coalesce(is_information_only, false)
        and not is_duplicate
        and requested_at >= timestamptz '2000-01-01 00:00:00+00'
    group by city_id, area_id, requested_week

),

final as (

    select
        mart.city_id,
        mart.area_id,
        mart.requested_week,
        mart.spiking_departments,
        len(string_split(mart.department_ids, ',')) as listed_departments,
        mart.requests,
        mart.area_requests,
        coalesce(facts.fct_area_requests, 0) as fct_area_requests

    from mart
    left join facts
        on mart.city_id = facts.city_id
        and mart.area_id = facts.area_id
        and mart.requested_week = facts.requested_week

)

select * from final
