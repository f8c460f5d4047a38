{#- The staging model of every SeeClickFix city: issues onto the canonical
    columns. Timestamps carry their offset, so they are instants; the city's
    wall clock comes from the registry's timezone. The issues feed has no
    duplicate flag, no parent issue, no channel and no due date. Reporter names,
    descriptions and photos stay in raw. -#}
{% macro seeclickfix_requests() %}
{%- set city = staged_city() -%}
{%- set raw = staged_raw(city) -%}
{%- set timezone = city.timezone -%}

{%- set renamed -%}
        {{ text_to_instant(raw_field(raw, 'created_at'), timezone) }} as requested_at,
        {{ text_to_instant(raw_field(raw, 'closed_at'), timezone) }} as closed_at,
        {{ raw_field(raw, 'status') }} as source_status,
        {{ raw_field(raw, 'request_type') }} as request_type,
        {{ raw_field(raw, 'summary') }} as summary,
        {{ raw_field(raw, 'address') }} as address,
        -- SeeClickFix has no zip field: it ends the address ("... Detroit, MI 48203, USA").
        {{ address_zip(raw_field(raw, 'address')) }} as address_zip,
        {{ raw_field(raw, 'lat', 'double') }} as latitude,
        {{ raw_field(raw, 'lng', 'double') }} as longitude,
        {{ raw_field(raw, 'rating', 'integer') }} as rating,
        {{ text_to_instant(raw_field(raw, 'acknowledged_at'), timezone) }} as acknowledged_at,
        {{ text_to_instant(raw_field(raw, 'reopened_at'), timezone) }} as reopened_at,
        {{ raw_field(raw, 'html_url') }} as html_url
{%- endset -%}

{%- set extras -%}
        json_object(
            'rating', rating,
            'request_type_id', json_extract(request_type, '$.id'),
            'acknowledged_at', strftime(acknowledged_at, '%Y-%m-%dT%H:%M:%SZ'),
            'reopened_at', strftime(reopened_at, '%Y-%m-%dT%H:%M:%SZ'),
            'html_url', html_url
        )
{%- endset -%}

{{ staged_requests(raw, renamed, {
    'requested_at_local': utc_to_local('requested_at', timezone),
    'closed_at_local': utc_to_local('closed_at', timezone),
    'due_at': 'cast(null as timestamptz)',
    'status': canonical_status('source_status'),
    'status_notes': 'cast(null as varchar)',
    'channel': 'cast(null as varchar)',
    'service_name': "coalesce(json_extract_string(request_type, '$.title'), summary)",
    'service_subtype': 'cast(null as varchar)',
    'service_code': 'cast(null as varchar)',
    'department': "json_extract_string(request_type, '$.organization')",
    'zip': clean_zip('address_zip'),
    'latitude': clean_coordinate('latitude'),
    'longitude': clean_coordinate('longitude'),
    'is_duplicate': 'false',
    'parent_request_id': 'cast(null as varchar)',
    'extras': extras,
}) }}
{% endmacro %}
