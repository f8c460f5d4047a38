{#- One row per loaded (city, department) that the departments seed does not
    list. Requests with no department are not listed: they belong to
    `<city_id>.unassigned`. -#}
{#- Shown in Dagster as a check on int_service_requests, the model it guards. -#}
{{ config(severity='error', meta={'dagster': {'ref': {'name': 'int_service_requests'}}}) }}

{% set unmapped %}
with

requests as (

    select city_id, department
    from {{ ref('int_service_requests') }}
    where department is not null

),

source_departments as (

    select city_id, department, count(*) as requests
    from requests
    group by city_id, department

),

final as (

    select
        source_departments.city_id,
        source_departments.department,
        source_departments.requests
    from source_departments
    left join {{ ref('departments') }} as departments
        on departments.city_id = source_departments.city_id
        and departments.source_department = source_departments.department
    where departments.department_id is null

)

select * from final
order by city_id, department
{% endset %}

{{ log_unmapped(unmapped, 'department') }}
{{ unmapped }}
