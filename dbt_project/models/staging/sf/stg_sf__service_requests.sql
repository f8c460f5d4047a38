{%- set raw = raw_source('raw_sf', feed_tables('sf')) -%}

with

source as (

    select * from {{ raw.relation }}

),

renamed as (

    select
        city_id,
        source_id as request_id,
        {{ raw_field(raw, 'requested_datetime') }} as requested_at_text,
        {{ raw_field(raw, 'closed_date') }} as closed_at_text,
        source_updated_at as updated_at,
        {{ raw_field(raw, 'status_description') }} as source_status,
        {{ raw_field(raw, 'status_notes') }} as status_notes,
        lower({{ raw_field(raw, 'source') }}) as channel,
        {{ raw_field(raw, 'service_name') }} as service_name,
        {{ raw_field(raw, 'service_subtype') }} as service_subtype,
        -- A few sign-shop queues are named after the technician who owns them:
        -- the person's name stays in raw, the queue keeps its function.
        regexp_replace(
            {{ raw_field(raw, 'agency_responsible') }},
            '^DPT SignShop Survey Tech - .+ Queue$',
            'DPT SignShop Survey Tech Queue'
        ) as department,
        {{ raw_field(raw, 'address') }} as address,
        {{ raw_field(raw, 'lat', 'double') }} as latitude,
        {{ raw_field(raw, 'long', 'double') }} as longitude,
        json_object(
            'street', {{ raw_field(raw, 'street') }},
            'supervisor_district', {{ raw_field(raw, 'supervisor_district') }},
            'neighborhood', {{ raw_field(raw, 'neighborhoods_sffind_boundaries') }},
            'analysis_neighborhood', {{ raw_field(raw, 'analysis_neighborhood') }},
            'police_district', {{ raw_field(raw, 'police_district') }}
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
        {{ canonical_status('source_status') }} as status,
        source_status,
        status_notes,
        channel,
        service_name,
        service_subtype,
        cast(null as varchar) as service_code,
        department,
        address,
        {{ clean_zip(address_zip('address')) }} as zip,
        {{ clean_coordinate('latitude') }} as latitude,
        {{ clean_coordinate('longitude') }} as longitude,
        {{ says_duplicate('status_notes') }} as is_duplicate,
        -- A note naming its own case ("previously reported as" on the original) names no parent.
        nullif(nullif(regexp_extract(
            status_notes, '(?i)(?:reported as|duplicate of)\s*(?:sr|case)?\s*#?\s*([0-9]{5,})', 1
        ), ''), request_id) as parent_request_id,
        extras,
        loaded_at

    from renamed

)

select * from final
