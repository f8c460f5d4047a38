{#- New York City (Socrata erm2-nwe9 and fhrw-4uyv, and the portal's exports).
    request_id is unique_key. is_duplicate: the resolution description says the
    complaint duplicates another. zip is incident_zip, null for a placeholder
    ("N/A"). extras keeps the Community Board as given (community_board) and as
    the community district's key, boro_cd (community_district: "06 BROOKLYN" ->
    306; null for an unspecified board; macros/staging/community_district.sql),
    which int_request_areas places a request without a point by. -#}
{% call(raw) socrata_requests() %}  -- noqa: LT02
        {{ raw_field(raw, 'created_date') }} as requested_at_text,
        {{ raw_field(raw, 'closed_date') }} as closed_at_text,
        {{ raw_field(raw, 'due_date') }} as due_at_text,
        {{ raw_field(raw, 'status') }} as source_status,
        {{ raw_field(raw, 'resolution_description') }} as status_notes,
        lower({{ raw_field(raw, 'open_data_channel_type') }}) as channel,
        {{ raw_field(raw, 'complaint_type') }} as service_name,
        {{ raw_field(raw, 'descriptor') }} as service_subtype,
        cast(null as varchar) as service_code,
        {{ raw_field(raw, 'agency') }} as department,
        {{ raw_field(raw, 'incident_address') }} as address,
        {{ raw_field(raw, 'incident_zip') }} as source_zip,
        {{ raw_field(raw, 'latitude', 'double') }} as latitude,
        {{ raw_field(raw, 'longitude', 'double') }} as longitude,
        cast(null as varchar) as parent_request_id,
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
        ) as extras
{% endcall %}
