{%- set raw = raw_source('raw_la', feed_tables('la')) -%}

with

source as (

    select * from {{ raw.relation }}

),

renamed as (

    select
        city_id,
        source_id as request_id,
        {{ raw_field(raw, 'createddate') }} as requested_at_text,
        {{ raw_field(raw, 'closeddate') }} as closed_at_text,
        source_updated_at as updated_at,
        {{ raw_field(raw, 'status') }} as source_status,
        {{ raw_field(raw, 'actiontaken') }} as status_notes,
        lower({{ raw_field(raw, 'requestsource') }}) as channel,
        {{ raw_field(raw, 'requesttype') }} as service_name,
        {{ raw_field(raw, 'owner') }} as department,
        {{ raw_field(raw, 'address') }} as address,
        {{ raw_field(raw, 'zipcode') }} as source_zip,
        {{ raw_field(raw, 'latitude', 'double') }} as latitude,
        {{ raw_field(raw, 'longitude', 'double') }} as longitude,
        json_object(
            -- The day the crew served (or will serve) the request: graffiti is
            -- often logged the day after its service date, so it is no due time.
            'service_date', {{ raw_field(raw, 'servicedate') }},
            'assign_to', {{ raw_field(raw, 'assignto') }},
            'anonymous', {{ raw_field(raw, 'anonymous') }},
            'address_verified', {{ raw_field(raw, 'addressverified') }},
            'approximate_address', {{ raw_field(raw, 'approximateaddress') }},
            'apc', {{ raw_field(raw, 'apc') }},
            'council_district', {{ raw_field(raw, 'cd') }},
            'neighborhood_council', {{ raw_field(raw, 'nc') }},
            'neighborhood_council_name', {{ raw_field(raw, 'ncname') }},
            'police_precinct', {{ raw_field(raw, 'policeprecinct') }}
        ) as extras,
        _loaded_at as loaded_at

    from source

),

final as (

    select
        city_id,
        request_id,
        {{ text_to_instant('requested_at_text', 'America/Los_Angeles') }} as requested_at,
        {{ text_to_wall_clock('requested_at_text', 'America/Los_Angeles') }} as requested_at_local,
        updated_at,
        {{ text_to_instant('closed_at_text', 'America/Los_Angeles') }} as closed_at,
        {{ text_to_wall_clock('closed_at_text', 'America/Los_Angeles') }} as closed_at_local,
        cast(null as timestamptz) as due_at,
        case
            when lower(source_status) in ('forward', 'referred out') then 'in_progress'
            else {{ canonical_status('source_status') }}
        end as status,
        source_status,
        status_notes,
        channel,
        service_name,
        cast(null as varchar) as service_subtype,
        cast(null as varchar) as service_code,
        department,
        address,
        {{ clean_zip('source_zip') }} as zip,
        {{ clean_coordinate('latitude') }} as latitude,
        {{ clean_coordinate('longitude') }} as longitude,
        {{ says_duplicate('status_notes') }} as is_duplicate,
        cast(null as varchar) as parent_request_id,
        extras,
        loaded_at

    from renamed

)

select * from final
