{#- What every city's staging model promises the canonical union, checked on the
    staged rows themselves (before the hard rules set any aside): request_id
    present and unique, city_id the city's own, requested_at present, status
    canonical and is_duplicate set. SeeClickFix cities also always have
    updated_at, never the status `other`, and one of the feed's four statuses.
    One row per broken promise. A blocking check on the union, as the staging
    models' own tests were on each: a failure keeps the marts from building. -#}
{{ config(severity='error', meta={'dagster': {'ref': {'name': 'int_service_requests'}}}) }}
-- depends_on: {{ ref('int_service_requests') }}  (so Dagster files it as a check on the union)

{% for city in city_feeds() %}
{%- set staged = ref('stg_' ~ city.id ~ '__service_requests') %}
{%- set other = [] if city.protocol == 'seeclickfix' else ['other'] %}
{%- set statuses = ['open', 'in_progress', 'closed'] + other %}
{%- set canonical_statuses = "'" ~ statuses | join("', '") ~ "'" %}
select
    '{{ city.id }}' as staged_city,
    city_id,
    request_id,
    case
        when request_id is null then 'request_id is null'
        when count(*) over (partition by request_id) > 1 then 'request_id is not unique'
        when (city_id is distinct from '{{ city.id }}') then 'city_id is not the city'
        when requested_at is null then 'requested_at is null'
        when status is null or status not in ({{ canonical_statuses }})
            then 'status is not canonical'
        when is_duplicate is null then 'is_duplicate is null'
        {%- if city.protocol == 'seeclickfix' %}
        when updated_at is null then 'updated_at is null'
        when source_status not in ('Open', 'Acknowledged', 'Closed', 'Archived')
            then 'source_status is unknown'
        {%- endif %}
    end as broken
from {{ staged }}
qualify broken is not null
{% if not loop.last %}union all{% endif %}
{% endfor %}
