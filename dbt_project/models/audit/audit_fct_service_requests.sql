-- fct_service_requests, every row, with whether its request is still in
-- int_service_requests, and window_at, which its check's window reads. No names or
-- free text (addresses stay out).
with

facts as (

    select
        city_id,
        request_id,
        requested_at,
        updated_at,
        closed_at,
        status,
        hours_to_close,
        hours_to_close_null_reason,
        exclusion_reason,
        is_staff_initiated

    from {{ ref('fct_service_requests') }}

),

cities as (

    select
        city_id,
        closed_on_creation_seconds
    from {{ ref('cities') }}

),

requests as (

    select
        city_id,
        request_id
    from {{ ref('int_service_requests') }}

),

final as (

    select
        facts.*,
        -- exactly one of a duration and the reason it has none
        (facts.hours_to_close is null) <> (facts.hours_to_close_null_reason is null) as duration_or_reason,
        case facts.exclusion_reason
            when 'staff_initiated' then coalesce(facts.is_staff_initiated, false)
            when 'closed_on_creation'
                then coalesce(round(facts.hours_to_close * 3600) <= cities.closed_on_creation_seconds, false)
            else true
        end as exclusion_matches_its_rule,
        requests.request_id is not null as in_intermediate,
        -- when the row last changed; null (every check reads it) for an orphan, which
        -- no change of its own brings into a window, and while its duration waits for
        -- a date in the future, since every run rewrites such a request
        case
            when requests.request_id is null then null
            when facts.hours_to_close_null_reason = 'date_in_future' then null
            else facts.updated_at
        end as window_at

    from facts
    left join cities
        on facts.city_id = cities.city_id
    left join requests
        on {{ audit_keys_match(['city_id', 'request_id'], left='facts', right='requests') }}

)

select * from final
