{#- One row per loaded (city, department) naming a department, with its
    canonical department: the seed departments' row, else the first
    department_rules match, else a department of its own, by the rule in
    macros/departments.sql. Requests naming no department are not here: they
    belong to `<city_id>.unassigned`.

    A table, built in dbt's first step like int_service_types, for the same
    reason: the facts, the taxonomy test and `civic311 taxonomy` read it. -#}
{{ config(materialized='table') }}

with

requests as (

    select
        city_id,
        department,
        count(*) as requests
    from {{ ref('int_service_requests') }}
    where department is not null
    group by city_id, department

),

classified as (

    {{ classified_departments('requests') }}

),

final as (

    select
        city_id,
        department,
        requests,
        normalised_name,
        seed_department_id,
        rule_department_id,
        rule_order,
        department_id,
        department_name,
        department_source,
        department_mapped

    from classified

)

select * from final
