{#- Every record civic311 received and did not model, with the rule it broke, the
    record as the feed delivered it (JSON) and the dlt load that brought it.

    - ingestion: records the adapter could not key (no id, a malformed export
      line) or that are not the city's (a SeeClickFix issue of another
      organisation), from each city's raw_<city>.rejected_service_requests;
    - canonical: loaded requests that break a hard rule of the canonical model
      (macros/hard_rules.sql), with their raw row.

    So for every city and load: records received = int_service_requests rows +
    these rows. Payloads can hold residents' names and free text: this schema is
    never published. -#}

with

{% for city in city_feeds() %}
{%- set rejected = raw_source(city.id, ['rejected_service_requests']) %}

{{ city.id }}_rejected as (

    select
        city_id,
        source_id,
        'ingestion' as stage,
        {{ raw_field(rejected, 'rule') }} as rule,
        {{ raw_field(rejected, 'payload') }} as payload,
        {{ raw_field(rejected, '_dlt_load_id') }} as load_id,
        _loaded_at as quarantined_at
    from {{ rejected.relation }}

),

{% for rule in hard_rules() %}
{{ city.id }}_breaks_{{ rule.rule }} as (

    select
        city_id,
        request_id as source_id
    from {{ ref('stg_' ~ city.id ~ '__service_requests') }}
    where coalesce({{ rule.breaks }}, false)

),
{% endfor %}

{{ city.id }}_breaking as (

    {% for rule in hard_rules() %}
    {#- the raw rows of the requests breaking the rule only: the raw feed's
        newest version is picked among those ids, not among every raw row -#}
    {%- set raw = raw_source(city.id, city.raw_tables, keys=city.id ~ '_breaks_' ~ rule.rule) %}
    select
        staged.city_id,
        staged.source_id,
        'canonical' as stage,
        '{{ rule.rule }}' as rule,
        -- raw_row here is the whole joined row, not a column
        cast(to_json(raw_row) as varchar) as payload,  -- noqa: RF02
        {{ raw_field(raw, '_dlt_load_id') }} as load_id,
        raw_row._loaded_at as quarantined_at
    from {{ city.id }}_breaks_{{ rule.rule }} as staged
    inner join {{ raw.relation }} as raw_row
        on staged.city_id = raw_row.city_id and staged.source_id = raw_row.source_id
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),
{% endfor %}

unioned as (

    {% for city in city_feeds() %}
    select * from {{ city.id }}_rejected
    union all
    select * from {{ city.id }}_breaking
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from unioned
