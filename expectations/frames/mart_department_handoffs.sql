-- marts.mart_department_handoffs against marts.fct_request_events: every row,
-- with the reassigned events the facts hold for its (city, from department, to
-- department, city-local month of the hand-off), plus a row (in_mart false) for
-- every such group the mart lacks.
with

mart as (

    select * from marts.mart_department_handoffs

),

facts as (

    select
        events.city_id,
        events.from_department_id,
        events.to_department_id,
        cast(date_trunc('month', timezone(cities.timezone, events.event_at)) as date) as handoff_month,
        count(*) as fct_handoffs

    from marts.fct_request_events as events
    inner join marts.dim_city as cities on events.city_id = cities.city_id
    where events.event_type = 'reassigned'
    group by all

),

final as (

    select
        coalesce(mart.city_id, facts.city_id) as city_id,
        coalesce(mart.from_department_id, facts.from_department_id) as from_department_id,
        coalesce(mart.to_department_id, facts.to_department_id) as to_department_id,
        coalesce(mart.handoff_month, facts.handoff_month) as handoff_month,
        mart.city_id is not null as in_mart,
        mart.handoffs,
        coalesce(facts.fct_handoffs, 0) as fct_handoffs,
        mart.median_hours_before_handoff

    from mart
    full join facts
        on mart.city_id = facts.city_id
        and mart.from_department_id = facts.from_department_id
        and mart.to_department_id = facts.to_department_id
        and mart.handoff_month = facts.handoff_month

)

select * from final
