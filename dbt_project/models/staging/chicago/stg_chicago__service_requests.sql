{%- set raw = raw_source('raw_chicago', feed_tables('chicago')) -%}

with

source as (

    select * from {{ raw.relation }}

),

renamed as (

    select
        city_id,
        source_id as request_id,
        {{ raw_field(raw, 'created_date') }} as requested_at_text,
        {{ raw_field(raw, 'closed_date') }} as closed_at_text,
        source_updated_at as updated_at,
        {{ raw_field(raw, 'status') }} as source_status,
        lower({{ raw_field(raw, 'origin') }}) as channel,
        {{ raw_field(raw, 'sr_type') }} as service_name,
        {{ raw_field(raw, 'sr_short_code') }} as service_code,
        {{ raw_field(raw, 'owner_department') }} as department,
        {{ raw_field(raw, 'street_address') }} as address,
        {{ raw_field(raw, 'zip_code') }} as source_zip,
        {{ raw_field(raw, 'latitude', 'double') }} as latitude,
        {{ raw_field(raw, 'longitude', 'double') }} as longitude,
        {{ raw_field(raw, 'duplicate', 'boolean') }} as duplicate_flag,
        {{ raw_field(raw, 'parent_sr_number') }} as parent_request_id,
        json_object(
            'created_department', {{ raw_field(raw, 'created_department') }},
            'owner_department', {{ raw_field(raw, 'owner_department') }},
            'legacy_record', {{ raw_field(raw, 'legacy_record', 'boolean') }},
            'legacy_sr_number', {{ raw_field(raw, 'legacy_sr_number') }},
            'community_area', {{ raw_field(raw, 'community_area') }},
            'ward', {{ raw_field(raw, 'ward') }},
            'police_district', {{ raw_field(raw, 'police_district') }},
            'police_beat', {{ raw_field(raw, 'police_beat') }},
            'precinct', {{ raw_field(raw, 'precinct') }}
        ) as extras,
        _loaded_at as loaded_at

    from source

),

final as (

    select
        city_id,
        request_id,
        {{ text_to_instant('requested_at_text', 'America/Chicago') }} as requested_at,
        {{ text_to_wall_clock('requested_at_text', 'America/Chicago') }} as requested_at_local,
        updated_at,
        {{ text_to_instant('closed_at_text', 'America/Chicago') }} as closed_at,
        {{ text_to_wall_clock('closed_at_text', 'America/Chicago') }} as closed_at_local,
        cast(null as timestamptz) as due_at,
        {{ canonical_status('source_status') }} as status,
        source_status,
        cast(null as varchar) as status_notes,
        channel,
        service_name,
        cast(null as varchar) as service_subtype,
        service_code,
        department,
        address,
        {{ clean_zip('source_zip') }} as zip,
        {{ clean_coordinate('latitude') }} as latitude,
        {{ clean_coordinate('longitude') }} as longitude,
        coalesce(duplicate_flag, false) or parent_request_id is not null as is_duplicate,
        parent_request_id,
        extras,
        loaded_at

    from renamed

)

select * from final
