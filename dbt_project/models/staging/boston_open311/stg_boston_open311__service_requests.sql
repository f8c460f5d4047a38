{%- set raw = raw_source('raw_boston_open311', ['service_requests']) -%}
{#- GeoReport has no closed time: a closed request's last update is its closure. -#}
{%- set closed_at = "case when status = 'closed' then updated_datetime end" -%}

with

source as (

    select * from {{ raw.relation }}

),

renamed as (

    select
        city_id,
        source_id as request_id,
        {{ raw_field(raw, 'requested_datetime', 'timestamptz') }} as requested_at,
        source_updated_at as updated_at,
        {{ raw_field(raw, 'updated_datetime', 'timestamptz') }} as updated_datetime,
        {{ raw_field(raw, 'expected_datetime', 'timestamptz') }} as due_at,
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
        {{ utc_to_local('requested_at', 'America/New_York') }} as requested_at_local,
        updated_at,
        {{ closed_at }} as closed_at,
        {{ utc_to_local(closed_at, 'America/New_York') }} as closed_at_local,
        due_at,
        status,
        source_status,
        status_notes,
        cast(null as varchar) as channel,
        service_name,
        cast(null as varchar) as service_subtype,
        service_code,
        department,
        address,
        {{ clean_zip('zipcode') }} as zip,
        {{ clean_coordinate('latitude') }} as latitude,
        {{ clean_coordinate('longitude') }} as longitude,
        {{ says_duplicate('status_notes') }} as is_duplicate,
        cast(null as varchar) as parent_request_id,
        json_object('address_id', address_id, 'service_notice', service_notice) as extras,
        loaded_at

    from renamed

)

select * from final
