with

source as (

    select * from {{ source('raw_nyc', 'service_requests') }}

),

renamed as (

    select
        city_id,
        source_id as request_id,
        try_cast(created_date as timestamp) as requested_at_local,
        try_cast(closed_date as timestamp) as closed_at_local,
        source_updated_at as updated_at,
        status as source_status,
        nullif(trim(agency), '') as department,
        nullif(trim(complaint_type), '') as service_type,
        nullif(trim(descriptor), '') as descriptor,
        incident_zip as source_zip,
        try_cast(latitude as double) as latitude,
        try_cast(longitude as double) as longitude,
        lower(nullif(trim(open_data_channel_type), '')) as channel,
        _loaded_at as loaded_at

    from source

),

final as (

    select
        city_id,
        request_id,
        requested_at_local,
        {{ local_to_utc('requested_at_local', 'America/New_York') }} as requested_at,
        closed_at_local,
        {{ local_to_utc('closed_at_local', 'America/New_York') }} as closed_at,
        updated_at,
        case
            when lower(source_status) = 'closed' then 'closed'
            when lower(source_status) in ('open', 'pending', 'assigned', 'in progress', 'started')
                then 'open'
            else 'other'
        end as status,
        source_status,
        department,
        service_type,
        descriptor,
        case when regexp_full_match(trim(source_zip), '[0-9]{5}') then trim(source_zip) end as zip,
        latitude,
        longitude,
        channel,
        loaded_at

    from renamed

)

select * from final
