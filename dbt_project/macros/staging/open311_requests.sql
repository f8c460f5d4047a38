{#- The staging model of every Open311 GeoReport v2 city. Times carry their
    offset, so they are instants; the wall clock comes from the registry's
    timezone. GeoReport has no closed time: a closed request's last update is
    its closure. Extensions are read where a city sends them (Chicago's
    extended_attributes: channel, zip, duplicate flag, parent request, ward,
    police district; notes that say duplicate) and are null elsewhere. Residents'
    descriptions, media URLs and free-text attributes stay in raw. -#}
{% macro open311_requests() %}
{%- set city = staged_city() -%}
{%- set raw = staged_raw(city) -%}
{%- set timezone = city.timezone -%}
{%- set closed_at = "case when status = 'closed' then updated_datetime end" -%}

{%- set renamed -%}
        {{ text_to_instant(raw_field(raw, 'requested_datetime'), timezone) }} as requested_at,
        {{ text_to_instant(raw_field(raw, 'updated_datetime'), timezone) }} as updated_datetime,
        {{ text_to_instant(raw_field(raw, 'expected_datetime'), timezone) }} as due_at,
        {{ canonical_status(raw_field(raw, 'status')) }} as status,
        {{ raw_field(raw, 'status') }} as source_status,
        {{ raw_field(raw, 'status_notes') }} as status_notes,
        {{ raw_field(raw, 'service_name') }} as service_name,
        {{ raw_field(raw, 'service_code') }} as service_code,
        {{ raw_field(raw, 'agency_responsible') }} as department,
        {{ raw_field(raw, 'address') }} as address,
        {{ raw_field(raw, 'zipcode') }} as zipcode,
        {{ raw_field(raw, 'lat', 'double') }} as latitude,
        {{ raw_field(raw, 'long', 'double') }} as longitude,
        {{ raw_field(raw, 'extended_attributes') }} as extended_attributes,
        {{ raw_field(raw, 'notes') }} as notes,
        {{ raw_field(raw, 'address_id') }} as address_id,
        {{ raw_field(raw, 'service_notice') }} as service_notice
{%- endset -%}

{%- set is_duplicate -%}
        coalesce(try_cast(json_extract_string(extended_attributes, '$.duplicate') as boolean), false)
        or {{ says_duplicate('status_notes') }}
        or {{ says_duplicate("array_to_string(json_extract_string(notes, '$[*].summary'), ' | ')") }}
{%- endset -%}

{%- set extras -%}
        json_object(
            'ward', json_extract_string(extended_attributes, '$.ward'),
            'police', json_extract_string(extended_attributes, '$.police'),
            'police_district', json_extract_string(extended_attributes, '$.police_district'),
            'address_id', address_id,
            'service_notice', service_notice,
            -- A postal code that is not a US ZIP (Toronto's) is kept here.
            'postal_code', case when {{ clean_zip('zipcode') }} is null then zipcode end
        )
{%- endset -%}

{{ staged_requests(raw, renamed, {
    'requested_at_local': utc_to_local('requested_at', timezone),
    'closed_at': closed_at,
    'closed_at_local': utc_to_local(closed_at, timezone),
    'channel': "lower(json_extract_string(extended_attributes, '$.channel'))",
    'service_subtype': 'cast(null as varchar)',
    'zip': clean_zip("coalesce(zipcode, json_extract_string(extended_attributes, '$.zip'))"),
    'latitude': clean_coordinate('latitude'),
    'longitude': clean_coordinate('longitude'),
    'is_duplicate': is_duplicate,
    'parent_request_id': "json_extract_string(extended_attributes, '$.parent_service_request_id')",
    'extras': extras,
}) }}
{% endmacro %}
