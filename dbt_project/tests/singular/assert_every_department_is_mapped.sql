{#- A warning, not a failure: one row per loaded (city, department) that no
    row of the seed departments names, with its requests and the canonical
    department it gets instead (from a department_rules match, or a department
    of its own, `<city_id>.source.<slug>`, when department_source is source).
    Requests with no department are not listed: they belong to
    `<city_id>.unassigned`. -#}
{{ config(severity='warn') }}

{% set unmapped %}
select
    city_id,
    department,
    requests,
    department_id,
    department_source
from {{ ref('int_departments') }}
where seed_department_id is null
order by city_id, department
{% endset %}

{{ log_rows(unmapped, 'unmapped department') }}
{{ unmapped }}
