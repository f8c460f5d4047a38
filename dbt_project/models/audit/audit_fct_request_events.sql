-- fct_request_events against fct_service_requests: every event, with the number
-- of created events of its request and whether the request is a fact, plus a row
-- (has_events false) for every request of the facts without events.
with

events as (

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

    select city_id, request_id
    from {{ ref('fct_service_requests') }}

),

final as (

    select
        coalesce(events.city_id, facts.city_id) as city_id,
        coalesce(events.request_id, facts.request_id) as request_id,
        events.event_seq,
        events.event_type,
        events.event_at,
        events.hours_since_previous_event,
        events.hours_with_from_department,
        events.created_events_of_request,
        events.request_id is not null as has_events,
        facts.request_id is not null as in_facts

    from events
    full join facts
        on {{ audit_keys_match(['city_id', 'request_id'], left='events') }}

)

select * from final
