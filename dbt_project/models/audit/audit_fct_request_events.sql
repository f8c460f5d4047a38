-- fct_request_events against fct_service_requests: every event, with the number
-- of created events of its request and whether the request is a fact, plus a row
-- (has_events false) for every request of the facts without events, and
-- window_at, which its check's window reads: the request's change time in the
-- facts (null for an event of a request the facts lack, which every check reads).
{%- set keys = ['city_id', 'request_id'] %}
with

mart as (

    select
        city_id,
        request_id,
        event_seq,
        event_type,
        event_at,
        hours_since_previous_event,
        hours_with_from_department,
        count(*) filter (where event_type = 'created') over (partition by city_id, request_id)
            as created_events_of_request

    from {{ ref('fct_request_events') }}

),

facts as (

    select
        city_id,
        request_id,
        updated_at
    from {{ ref('fct_service_requests') }}

),

final as (

    select
        {{- audit_keys(keys) }}
        mart.event_seq,
        mart.event_type,
        mart.event_at,
        mart.hours_since_previous_event,
        mart.hours_with_from_department,
        mart.created_events_of_request,
        mart.request_id is not null as has_events,
        facts.request_id is not null as in_facts,
        facts.updated_at as window_at

    {{ audit_mart_beside_facts(keys) }}

)

select * from final
