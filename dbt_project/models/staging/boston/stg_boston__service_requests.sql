{%- set raw = raw_source('raw_boston', feed_tables('boston')) -%}

with

source as (

    select * from {{ raw.relation }}

),

renamed as (

    select
        city_id,
        source_id as request_id,
        {{ raw_field(raw, 'open_dt') }} as requested_at_text,
        {{ raw_field(raw, 'closed_dt') }} as closed_at_text,
        -- sla_target_dt since 2023; the 2022 and earlier files call it target_dt.
        coalesce(
            {{ raw_field(raw, 'sla_target_dt') }},
            {{ raw_field(raw, 'target_dt') }}
        ) as due_at_text,
        source_updated_at as updated_at,
        {{ raw_field(raw, 'case_status') }} as source_status,
        {{ raw_field(raw, 'closure_reason') }} as status_notes,
        lower({{ raw_field(raw, 'source') }}) as channel,
        {{ raw_field(raw, 'type') }} as service_name,
        {{ raw_field(raw, 'department') }} as department,
        {{ raw_field(raw, 'location') }} as address,
        {{ raw_field(raw, 'location_zipcode') }} as source_zip,
        {{ raw_field(raw, 'latitude', 'double') }} as source_latitude,
        {{ raw_field(raw, 'longitude', 'double') }} as source_longitude,
        json_object(
            'on_time', coalesce({{ raw_field(raw, 'on_time') }}, {{ raw_field(raw, 'ontime') }}),
            'subject', {{ raw_field(raw, 'subject') }},
            'reason', {{ raw_field(raw, 'reason') }},
            'queue', {{ raw_field(raw, 'queue') }},
            'neighborhood', {{ raw_field(raw, 'neighborhood') }},
            'neighborhood_services_district', {{ raw_field(raw, 'neighborhood_services_district') }},
            'ward', {{ raw_field(raw, 'ward') }},
            'precinct', {{ raw_field(raw, 'precinct') }},
            'city_council_district', {{ raw_field(raw, 'city_council_district') }},
            'police_district', {{ raw_field(raw, 'police_district') }},
            'fire_district', {{ raw_field(raw, 'fire_district') }},
            'pwd_district', {{ raw_field(raw, 'pwd_district') }}
        ) as extras,
        _loaded_at as loaded_at

    from source

),

located as (

    select
        *,
        -- Boston files a request it could not place at 42.3594, -71.0587 (City
        -- Hall): that point means "no location", not a request at City Hall.
        coalesce(source_latitude = 42.3594 and source_longitude = -71.0587, false) as is_default_point

    from renamed

),

final as (

    select
        city_id,
        request_id,
        {{ text_to_instant('requested_at_text', 'America/New_York') }} as requested_at,
        {{ text_to_wall_clock('requested_at_text', 'America/New_York') }} as requested_at_local,
        updated_at,
        {{ text_to_instant('closed_at_text', 'America/New_York') }} as closed_at,
        {{ text_to_wall_clock('closed_at_text', 'America/New_York') }} as closed_at_local,
        {{ text_to_instant('due_at_text', 'America/New_York') }} as due_at,
        {{ canonical_status('source_status') }} as status,
        source_status,
        status_notes,
        channel,
        service_name,
        -- Boston's types sit under a reason and a subject (coarser, in extras);
        -- nothing is finer than the type.
        cast(null as varchar) as service_subtype,
        cast(null as varchar) as service_code,
        department,
        address,
        {{ clean_zip('source_zip') }} as zip,
        case when not is_default_point then {{ clean_coordinate('source_latitude') }} end as latitude,
        case when not is_default_point then {{ clean_coordinate('source_longitude') }} end as longitude,
        {{ says_duplicate('status_notes') }} as is_duplicate,
        cast(null as varchar) as parent_request_id,
        extras,
        loaded_at

    from located

)

select * from final
