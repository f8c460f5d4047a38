{#- Boston (the CKAN DataStore of data.boston.gov, and loaded CSV files).
    request_id is case_enquiry_id; status is case_status (Open -> open, Closed ->
    closed); status_notes is closure_reason (" " while open, so null), which
    says when a case duplicates another ("Duplicate of Existing Case"). Boston
    files a request at three levels, subject (the department's name) > reason
    (category) > type: service_name is the type, nothing is finer, and subject
    and reason are in extras. Not case_title: staff type it freely and it can
    name people, so it stays in raw. Blank cells, which Boston writes as " ",
    are null. -#}

{#- Boston files a request it could not place at 42.3594, -71.0587 (City Hall):
    that point means "no location", not a request at City Hall. -#}
{%- set default_point = 'coalesce(source_latitude = 42.3594 and source_longitude = -71.0587, false)' -%}
{%- set rules = {
    'latitude': 'case when not ' ~ default_point ~ ' then ' ~ clean_coordinate('source_latitude') ~ ' end',
    'longitude': 'case when not ' ~ default_point ~ ' then ' ~ clean_coordinate('source_longitude') ~ ' end',
} -%}

{% call(raw) ckan_requests(rules=rules) %}  -- noqa: LT02
        {{ raw_field(raw, 'open_dt') }} as requested_at_text,
        {{ raw_field(raw, 'closed_dt') }} as closed_at_text,
        -- sla_target_dt since 2023; the 2022 and earlier files call it target_dt.
        coalesce(
            {{ raw_field(raw, 'sla_target_dt') }},
            {{ raw_field(raw, 'target_dt') }}
        ) as due_at_text,
        {{ raw_field(raw, 'case_status') }} as source_status,
        {{ raw_field(raw, 'closure_reason') }} as status_notes,
        lower({{ raw_field(raw, 'source') }}) as channel,
        {{ raw_field(raw, 'type') }} as service_name,
        cast(null as varchar) as service_subtype,
        cast(null as varchar) as service_code,
        {{ raw_field(raw, 'department') }} as department,
        {{ raw_field(raw, 'location') }} as address,
        {{ raw_field(raw, 'location_zipcode') }} as source_zip,
        {{ raw_field(raw, 'latitude', 'double') }} as source_latitude,
        {{ raw_field(raw, 'longitude', 'double') }} as source_longitude,
        cast(null as varchar) as parent_request_id,
        json_object(
            'on_time', coalesce({{ raw_field(raw, 'on_time') }}, {{ raw_field(raw, 'ontime') }}),
            'subject', {{ raw_field(raw, 'subject') }},
            'reason', {{ raw_field(raw, 'reason') }},
            'queue', {{ raw_field(raw, 'queue') }},
            'neighborhood', {{ raw_field(raw, 'neighborhood') }},
            'neighborhood_services_district', {{ raw_field(raw, 'neighborhood_services_district') }},
            'ward', {{ raw_field(raw, 'ward') }},
            'precinct', {{ raw_field(raw, 'precinct') }},
            'city_council_district', {{ raw_field(raw, 'city_council_district') }},
            'police_district', {{ raw_field(raw, 'police_district') }},
            'fire_district', {{ raw_field(raw, 'fire_district') }},
            'pwd_district', {{ raw_field(raw, 'pwd_district') }}
        ) as extras
{% endcall %}
