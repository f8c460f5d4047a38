{%- set raw = raw_source('raw_nyc', feed_tables('nyc')) -%}

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
        {{ raw_field(raw, 'due_date') }} as due_at_text,
        source_updated_at as updated_at,
        {{ raw_field(raw, 'status') }} as source_status,
        {{ raw_field(raw, 'resolution_description') }} as status_notes,
        lower({{ raw_field(raw, 'open_data_channel_type') }}) as channel,
        {{ raw_field(raw, 'complaint_type') }} as service_name,
        {{ raw_field(raw, 'descriptor') }} as service_subtype,
        {{ raw_field(raw, 'agency') }} as department,
        {{ raw_field(raw, 'incident_address') }} as address,
        {{ raw_field(raw, 'incident_zip') }} as source_zip,
        {{ raw_field(raw, 'latitude', 'double') }} as latitude,
        {{ raw_field(raw, 'longitude', 'double') }} as longitude,
        json_object(
            'agency_name', {{ raw_field(raw, 'agency_name') }},
            'borough', {{ raw_field(raw, 'borough') }},
            'community_board', {{ raw_field(raw, 'community_board') }},
            -- The board as the community_district layer's key: the city's own placement.
            'community_district', {{ community_board_district(raw_field(raw, 'community_board')) }},
            'bbl', {{ raw_field(raw, 'bbl') }},
            'location_type', {{ raw_field(raw, 'location_type') }},
            'incident_city', {{ raw_field(raw, 'city') }},
            'resolution_action_updated_date', {{ raw_field(raw, 'resolution_action_updated_date') }},
            'x_coordinate_state_plane', {{ raw_field(raw, 'x_coordinate_state_plane') }},
            'y_coordinate_state_plane', {{ raw_field(raw, 'y_coordinate_state_plane') }}
        ) as extras,
        _loaded_at as loaded_at

    from source

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
        service_subtype,
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
