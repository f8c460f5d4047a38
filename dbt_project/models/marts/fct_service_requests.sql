with

requests as (

    select * from {{ ref('int_service_requests') }}

),

validated as (

    select
        *,
        case
            when closed_at is null then 'not_closed'
            when requested_at < timestamptz '2000-01-01 00:00:00+00'
                or closed_at < timestamptz '2000-01-01 00:00:00+00'
                then 'date_before_2000'
            when requested_at > {{ as_of() }} or closed_at > {{ as_of() }}
                then 'date_in_future'
            when closed_at < requested_at then 'closed_before_requested'
        end as hours_to_close_null_reason

    from requests

),

final as (

    select
        city_id,
        request_id,
        requested_at,
        requested_at_local,
        updated_at,
        closed_at,
        closed_at_local,
        due_at,
        status,
        source_status,
        channel,
        service_name,
        service_subtype,
        service_code,
        department,
        address,
        zip,
        latitude,
        longitude,
        is_duplicate,
        parent_request_id,
        case
            when hours_to_close_null_reason is null
                then date_diff('second', requested_at, closed_at) / 3600.0
        end as hours_to_close,
        hours_to_close_null_reason

    from validated

)

select * from final
