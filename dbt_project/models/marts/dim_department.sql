{#- Every canonical department: those the seed `departments` defines and the
    `<city_id>.unassigned` stand-in of requests naming no department. -#}

with

departments as (

    select * from {{ ref('departments') }}

),

requests as (

    select * from {{ ref('fct_service_requests') }}

),

seeded as (

    select
        department_id,
        city_id,
        department_name,
        string_agg(source_department, '; ' order by source_department) as source_departments

    from departments
    group by department_id, city_id, department_name

),

unassigned as (

    select distinct
        department_id,
        city_id,
        'Unassigned' as department_name,
        cast(null as varchar) as source_departments

    from requests
    where department is null

),

final as (

    select * from seeded
    union all
    select * from unassigned

)

select * from final
