-- mart_department_handoffs against fct_request_events: every row, with the
-- reassigned events the facts hold for its (city, from department, to
-- department, city-local month of the hand-off), plus a row (in_mart false) for
-- every such group the mart lacks.
{%- set keys = ['city_id', 'from_department_id', 'to_department_id', 'handoff_month'] %}
with

mart as (

    select * from {{ ref('mart_department_handoffs') }}

),

facts as (

    select
        events.city_id,
        events.from_department_id,
        events.to_department_id,
        cast(date_trunc('month', timezone(cities.timezone, events.event_at)) as date) as handoff_month,
        count(*) as fct_handoffs

    from {{ ref('fct_request_events') }} as events
    inner join {{ ref('dim_city') }} as cities on events.city_id = cities.city_id
    where events.event_type = 'reassigned'
    group by all

),

final as (

    select
        {{- audit_group(keys) }}
        mart.handoffs,
        coalesce(facts.fct_handoffs, 0) as fct_handoffs,
        mart.median_hours_before_handoff

    {{ audit_mart_beside_facts(keys) }}

)

select * from final
