{#- Chicago (CSR system, Socrata v6vf-nfxy, Dec 2018 on). request_id is
    sr_number. The status "Canceled" maps to other. owner_department is
    `department`; created_department, owner_department and legacy_record are
    kept in extras. -#}

{#- Chicago marks duplicates itself: `duplicate` is true, or parent_sr_number
    names the request it duplicates. -#}
{%- set is_duplicate = 'coalesce(duplicate_flag, false) or parent_request_id is not null' -%}

{% call(raw) socrata_requests(rules={'is_duplicate': is_duplicate}) %}  -- noqa: LT02
        {{ raw_field(raw, 'created_date') }} as requested_at_text,
        {{ raw_field(raw, 'closed_date') }} as closed_at_text,
        cast(null as varchar) as due_at_text,
        {{ raw_field(raw, 'status') }} as source_status,
        cast(null as varchar) as status_notes,
        lower({{ raw_field(raw, 'origin') }}) as channel,
        {{ raw_field(raw, 'sr_type') }} as service_name,
        cast(null as varchar) as service_subtype,
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
        ) as extras
{% endcall %}
