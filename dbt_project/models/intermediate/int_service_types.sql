{#- One row per loaded (city, service type, subtype), with its category. The
    category rule, in order: the seed row for its exact subtype, else the seed
    row for any subtype of its service name (service_type_categories); else the
    first service_type_rules pattern, of its city or of any city (`*`), matching
    its rule text (macros/taxonomy.sql); else `unclassified`. Rules are matched
    once per distinct type, never per request.

    A table, built in dbt's first step beside int_service_requests: the facts,
    the taxonomy tests, the Dagster gate on the unclassified share and
    `civic311 taxonomy` all read it, and none of them has to count every
    request again. -#}
{{ config(materialized='table') }}

with

requests as (

    select
        city_id,
        service_name,
        service_subtype,
        count(*) as requests
    from {{ ref('int_service_requests') }}
    group by city_id, service_name, service_subtype

),

seeded as (

    select
        requests.*,
        coalesce(exact_subtype.category_id, any_subtype.category_id) as seed_category_id

    from requests
    left join {{ ref('service_type_categories') }} as exact_subtype
        on requests.city_id = exact_subtype.city_id
            and requests.service_name = exact_subtype.service_name
            and requests.service_subtype = exact_subtype.service_subtype
    left join {{ ref('service_type_categories') }} as any_subtype
        on requests.city_id = any_subtype.city_id
            and requests.service_name = any_subtype.service_name
            and any_subtype.service_subtype is null

),

rule_matches as (

    select
        requests.city_id,
        requests.service_name,
        requests.service_subtype,
        arg_min(rules.category_id, rules.rule_order) as rule_category_id,
        min(rules.rule_order) as rule_order

    from requests
    inner join {{ ref('service_type_rules') }} as rules
        on rules.city_id in ('*', requests.city_id)
            and regexp_matches(
                {{ service_type_rule_text('requests.service_name', 'requests.service_subtype') }},
                rules.pattern,
                'i'
            )
    group by requests.city_id, requests.service_name, requests.service_subtype

),

final as (

    select
        seeded.city_id,
        seeded.service_name,
        seeded.service_subtype,
        seeded.requests,
        seeded.seed_category_id,
        rule_matches.rule_category_id,
        rule_matches.rule_order,
        coalesce(seeded.seed_category_id, rule_matches.rule_category_id, 'unclassified') as category_id,
        case
            when seeded.seed_category_id is not null then 'seed'
            when rule_matches.rule_category_id is not null then 'rule'
            else 'unclassified'
        end as category_source

    from seeded
    left join rule_matches
        on seeded.city_id = rule_matches.city_id
            and seeded.service_name is not distinct from rule_matches.service_name
            and seeded.service_subtype is not distinct from rule_matches.service_subtype

)

select * from final
