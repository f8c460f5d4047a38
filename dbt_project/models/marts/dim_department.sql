{#- Every canonical department: those the seed `departments` defines, those
    department_rules give, the departments of their own that names no seed row
    or rule maps (`<city_id>.source.<slug>`, department_mapped false), and the
    `<city_id>.unassigned` stand-in of requests naming no department. -#}

with

seeded as (

    select
        city_id,
        source_department,
        department_id,
        department_name,
        true as department_mapped

    from {{ ref('departments') }}

),

classified as (

    select
        city_id,
        department as source_department,
        department_id,
        department_name,
        department_mapped

    from {{ ref('int_departments') }}
    where department_source <> 'seed'

),

sources as (

    select * from seeded
    union all
    select * from classified

),

named as (

    select
        department_id,
        city_id,
        department_name,
        string_agg(distinct source_department, '; ' order by source_department) as source_departments,
        bool_or(department_mapped) as department_mapped

    from sources
    -- one name per id (a rule id the seed knows takes the seed's name): the
    -- unique test on department_id fails if two names ever met here
    group by department_id, city_id, department_name

),

unassigned as (

    select distinct
        department_id,
        city_id,
        'Unassigned' as department_name,
        cast(null as varchar) as source_departments,
        true as department_mapped

    from {{ ref('fct_service_requests') }}
    where department is null

),

final as (

    select * from named
    union all
    select * from unassigned

)

select * from final
