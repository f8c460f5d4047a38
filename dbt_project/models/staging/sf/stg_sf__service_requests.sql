{#- San Francisco (Socrata 311 Cases, and loaded exports). request_id is
    service_request_id (CaseID in old exports). SF has no duplicate flag: a case
    is a duplicate when its status notes say so ("Case is a Duplicate",
    "resolved: duplicate"). -#}

{#- The parent case, from notes such as "previously reported as 2531699"; a note
    naming its own case ("previously reported as" on the original) names no parent. -#}
{%- set parent_request_id -%}
    nullif(nullif(regexp_extract(
        status_notes, '(?i)(?:reported as|duplicate of)\s*(?:sr|case)?\s*#?\s*([0-9]{5,})', 1
    ), ''), request_id)
{%- endset -%}

{#- SF sends no ZIP field: the ZIP is the one that ends the address. -#}
{%- set rules = {'zip': clean_zip(address_zip('address')), 'parent_request_id': parent_request_id} -%}

{% call(raw) socrata_requests(rules=rules) %}  -- noqa: LT02
        {{ raw_field(raw, 'requested_datetime') }} as requested_at_text,
        {{ raw_field(raw, 'closed_date') }} as closed_at_text,
        cast(null as varchar) as due_at_text,
        {{ raw_field(raw, 'status_description') }} as source_status,
        {{ raw_field(raw, 'status_notes') }} as status_notes,
        lower({{ raw_field(raw, 'source') }}) as channel,
        {{ raw_field(raw, 'service_name') }} as service_name,
        {{ raw_field(raw, 'service_subtype') }} as service_subtype,
        cast(null as varchar) as service_code,
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
        ) as extras
{% endcall %}
