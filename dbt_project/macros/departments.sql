{#- The department rule, written once for int_departments (the current names) and
    fct_request_events (every name a request's history holds). A city's own
    department or queue name is mapped by, in order: its exact row in the seed
    departments; the first department_rules pattern, of its city or of any city
    (`*`), matching its normalised name (trimmed, runs of whitespace as one
    space), which gives `<city_id>.<department_slug>` and the seed's name for an
    id the seed already has; else it is a department of its own,
    `<city_id>.source.<slug of its normalised name>` named by that name. Seeded
    and rule ids have one dot (a seed test holds them to it), so a source-named
    id, with two, never meets one.

    `named` is a relation or CTE with one row per (city_id, department) and
    department not null; its other columns are kept. -#}
{% macro classified_departments(named) %}

    with

    normalised as (

        select
            *,
            regexp_replace(trim(department), '\s+', ' ', 'g') as normalised_name

        from {{ named }}

    ),

    seeded_names as (

        select department_id, min(department_name) as department_name
        from {{ ref('departments') }}
        group by department_id

    ),

    rule_matches as (

        select
            normalised.city_id,
            normalised.department,
            arg_min(normalised.city_id || '.' || rules.department_slug, rules.rule_order) as rule_department_id,
            arg_min(rules.department_name, rules.rule_order) as rule_department_name,
            min(rules.rule_order) as rule_order

        from normalised
        inner join {{ ref('department_rules') }} as rules
            on rules.city_id in ('*', normalised.city_id)
            and regexp_matches(normalised.normalised_name, rules.pattern, 'i')
        group by normalised.city_id, normalised.department

    ),

    sourced as (

        select
            normalised.*,
            seed.department_id as seed_department_id,
            seed.department_name as seed_department_name,
            rule_matches.rule_department_id,
            coalesce(rule_names.department_name, rule_matches.rule_department_name) as rule_department_name,
            rule_matches.rule_order,
            normalised.city_id || '.source.' || coalesce(
                nullif(trim(regexp_replace(lower(normalised.normalised_name), '[^a-z0-9]+', '_', 'g'), '_'), ''),
                'unnamed'
            ) as source_department_id

        from normalised
        left join {{ ref('departments') }} as seed
            on normalised.city_id = seed.city_id
            and normalised.department = seed.source_department
        left join rule_matches
            on normalised.city_id = rule_matches.city_id
            and normalised.department = rule_matches.department
        left join seeded_names as rule_names
            on rule_matches.rule_department_id = rule_names.department_id

    ),

    final as (

        select
            * exclude (seed_department_name, rule_department_name, source_department_id),
            coalesce(seed_department_id, rule_department_id, source_department_id) as department_id,
            case
                when seed_department_id is not null then seed_department_name
                when rule_department_id is not null then rule_department_name
                -- names that differ only in case or punctuation share a slug: one name for the id
                else min(normalised_name) over (partition by source_department_id)
            end as department_name,
            case
                when seed_department_id is not null then 'seed'
                when rule_department_id is not null then 'rule'
                else 'source'
            end as department_source,
            seed_department_id is not null or rule_department_id is not null as department_mapped

        from sourced

    )

    select * from final

{% endmacro %}

{#- A request's canonical department id: `<city_id>.unassigned` when it names no
    department, else the department_id of `departments`, the alias of its row in
    classified_departments (int_departments), left-joined on (city_id, department). -#}
{% macro canonical_department_id(city_id, department, departments='departments') -%}
    case
        when {{ department }} is null then {{ city_id }} || '.unassigned'
        else {{ departments }}.department_id
    end
{%- endmacro %}

{#- Whether a request's department is mapped: a request naming none belongs to
    `<city_id>.unassigned`, which needs no mapping. -#}
{% macro department_is_mapped(department, departments='departments') -%}
    case
        when {{ department }} is null then true
        else {{ departments }}.department_mapped
    end
{%- endmacro %}
