-- mart_department_joint_spikes against fct_service_requests: every row, with
-- the number of departments it lists and the demand requests the facts hold for
-- its (city, area, week). Rows exist only for joint spikes, so there is no group
-- the mart must have. Demand leaves out information-only requests, duplicates
-- and requests dated before 2000 (macros/demand.sql).
{%- set keys = ['city_id', 'area_id', 'requested_week'] %}
with

mart as (

    select * from {{ ref('mart_department_joint_spikes') }}

),

facts as (

    {{ audit_fact_counts(keys, demand_only=true, counted_as='fct_area_requests') }}

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
        on {{ audit_keys_match(keys) }}

)

select * from final
