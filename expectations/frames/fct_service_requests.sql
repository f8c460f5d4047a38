-- marts.fct_service_requests, every row, with whether its request is still in
-- intermediate.int_service_requests. No names or free text (addresses stay out).
with

facts as (

    select
        city_id,
        request_id,
        requested_at,
        closed_at,
        status,
        hours_to_close,
        hours_to_close_null_reason,
        exclusion_reason

    from marts.fct_service_requests

),

requests as (

    select city_id, request_id
    from intermediate.int_service_requests

),

final as (

    select
        facts.*,
        -- exactly one of a duration and the reason it has none
        (facts.hours_to_close is null) <> (facts.hours_to_close_null_reason is null) as duration_or_reason,
        requests.request_id is not null as in_intermediate

    from facts
    left join requests
        on facts.city_id = requests.city_id
        and facts.request_id = requests.request_id

)

select * from final
