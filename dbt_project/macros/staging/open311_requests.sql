{#- The staging model of every Open311 GeoReport v2 city. Times carry their
    offset, so they are instants; the wall clock comes from `timezone`.
    GeoReport has no closed time: a closed request's last update is its closure.
    Extensions are read where a city sends them (Chicago's extended_attributes:
    channel, zip, duplicate flag, parent request, ward, police district; notes
    that say duplicate) and are null elsewhere. Residents' descriptions, media
    URLs and free-text attributes stay in raw. -#}
{% macro open311_requests(raw, timezone) %}
{%- set closed_at = "case when status = 'closed' then updated_datetime end" -%}

with

source as (

    select * from {{ raw.relation }}

),

renamed as (

    select
        city_id,
        source_id as request_id,
        {{ text_to_instant(raw_field(raw, 'requested_datetime'), timezone) }} as requested_at,
        source_updated_at as updated_at,
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
        {{ raw_field(raw, 'service_notice') }} as service_notice,
        _loaded_at as loaded_at

    from source

),

final as (

    select
        city_id,
        request_id,
        requested_at,
        {{ utc_to_local('requested_at', timezone) }} as requested_at_local,
        updated_at,
        {{ closed_at }} as closed_at,
        {{ utc_to_local(closed_at, timezone) }} as closed_at_local,
        due_at,
        status,
        source_status,
        status_notes,
        lower(json_extract_string(extended_attributes, '$.channel')) as channel,
        service_name,
        cast(null as varchar) as service_subtype,
        service_code,
        department,
        address,
        {{ clean_zip("coalesce(zipcode, json_extract_string(extended_attributes, '$.zip'))") }} as zip,
        {{ clean_coordinate('latitude') }} as latitude,
        {{ clean_coordinate('longitude') }} as longitude,
        coalesce(try_cast(json_extract_string(extended_attributes, '$.duplicate') as boolean), false)
        or {{ says_duplicate('status_notes') }}
        or {{ says_duplicate("array_to_string(json_extract_string(notes, '$[*].summary'), ' | ')") }}
            as is_duplicate,
        json_extract_string(extended_attributes, '$.parent_service_request_id') as parent_request_id,
        json_object(
            'ward', json_extract_string(extended_attributes, '$.ward'),
            'police', json_extract_string(extended_attributes, '$.police'),
            'police_district', json_extract_string(extended_attributes, '$.police_district'),
            'address_id', address_id,
            'service_notice', service_notice,
            -- A postal code that is not a US ZIP (Toronto's) is kept here.
            'postal_code', case when {{ clean_zip('zipcode') }} is null then zipcode end
        ) as extras,
        loaded_at

    from renamed

)

select * from final
{% endmacro %}
