{#- The staging model of every SeeClickFix city: issues onto the canonical
    columns. Timestamps carry their offset, so they are instants; the city's
    wall clock comes from `timezone`. The issues feed has no duplicate flag, no
    channel and no due date. Reporter names, descriptions and photos stay in raw. -#}
{% macro seeclickfix_requests(raw, timezone) %}
with

source as (

    select * from {{ raw.relation }}

),

renamed as (

    select
        city_id,
        source_id as request_id,
        {{ text_to_instant(raw_field(raw, 'created_at'), timezone) }} as requested_at,
        source_updated_at as updated_at,
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
        {{ raw_field(raw, 'html_url') }} as html_url,
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
        closed_at,
        {{ utc_to_local('closed_at', timezone) }} as closed_at_local,
        cast(null as timestamptz) as due_at,
        {{ canonical_status('source_status') }} as status,
        source_status,
        cast(null as varchar) as status_notes,
        cast(null as varchar) as channel,
        coalesce(json_extract_string(request_type, '$.title'), summary) as service_name,
        cast(null as varchar) as service_subtype,
        cast(null as varchar) as service_code,
        json_extract_string(request_type, '$.organization') as department,
        address,
        {{ clean_zip('address_zip') }} as zip,
        {{ clean_coordinate('latitude') }} as latitude,
        {{ clean_coordinate('longitude') }} as longitude,
        -- The issues feed has no duplicate flag or parent issue.
        false as is_duplicate,
        cast(null as varchar) as parent_request_id,
        json_object(
            'rating', rating,
            'request_type_id', json_extract(request_type, '$.id'),
            'acknowledged_at', strftime(acknowledged_at, '%Y-%m-%dT%H:%M:%SZ'),
            'reopened_at', strftime(reopened_at, '%Y-%m-%dT%H:%M:%SZ'),
            'html_url', html_url
        ) as extras,
        loaded_at

    from renamed

)

select * from final
{% endmacro %}
