{#- Los Angeles (every year's MyLA311 dataset, and loaded exports). request_id
    is the SR number. "Cancelled" is other. MyLA311 publishes no due time: its
    service date is the day crews served or will serve the request (graffiti is
    often logged the day after it), so it is kept in extras as service_date and
    due_at is null. -#}

{#- "Forward" and "Referred Out" mean another agency has the request: in_progress. -#}
{%- set status -%}
    case
        when lower(source_status) in ('forward', 'referred out') then 'in_progress'
        else {{ canonical_status('source_status') }}
    end
{%- endset -%}

{% call(raw) socrata_requests(rules={'status': status}) %}  -- noqa: LT02
        {{ raw_field(raw, 'createddate') }} as requested_at_text,
        {{ raw_field(raw, 'closeddate') }} as closed_at_text,
        cast(null as varchar) as due_at_text,
        {{ raw_field(raw, 'status') }} as source_status,
        {{ raw_field(raw, 'actiontaken') }} as status_notes,
        lower({{ raw_field(raw, 'requestsource') }}) as channel,
        {{ raw_field(raw, 'requesttype') }} as service_name,
        cast(null as varchar) as service_subtype,
        cast(null as varchar) as service_code,
        {{ raw_field(raw, 'owner') }} as department,
        {{ raw_field(raw, 'address') }} as address,
        {{ raw_field(raw, 'zipcode') }} as source_zip,
        {{ raw_field(raw, 'latitude', 'double') }} as latitude,
        {{ raw_field(raw, 'longitude', 'double') }} as longitude,
        cast(null as varchar) as parent_request_id,
        json_object(
            -- The day the crew served (or will serve) the request: graffiti is
            -- often logged the day after its service date, so it is no due time.
            'service_date', {{ raw_field(raw, 'servicedate') }},
            'assign_to', {{ raw_field(raw, 'assignto') }},
            'anonymous', {{ raw_field(raw, 'anonymous') }},
            'address_verified', {{ raw_field(raw, 'addressverified') }},
            'approximate_address', {{ raw_field(raw, 'approximateaddress') }},
            'apc', {{ raw_field(raw, 'apc') }},
            'council_district', {{ raw_field(raw, 'cd') }},
            'neighborhood_council', {{ raw_field(raw, 'nc') }},
            'neighborhood_council_name', {{ raw_field(raw, 'ncname') }},
            'police_precinct', {{ raw_field(raw, 'policeprecinct') }}
        ) as extras
{% endcall %}
