-- mart_cross_department against the facts: every row, with the requests
-- fct_service_requests holds for its (city, department, category, month) and
-- the hand-offs out of and into the department that fct_request_events holds
-- on those requests, plus a row (in_mart false) for every such group the mart
-- lacks.
{%- set keys = ['city_id', 'department_id', 'category_id', 'requested_month'] %}
with

mart as (

    select * from {{ ref('mart_cross_department') }}

),

requests as (

    select
        city_id,
        request_id,
        department_id,
        category_id,
        requested_month
    from {{ ref('fct_service_requests') }}

),

handoffs as (

    select
        requests.city_id,
        requests.category_id,
        requests.requested_month,
        events.from_department_id,
        events.to_department_id

    from {{ ref('fct_request_events') }} as events
    inner join requests
        on events.city_id = requests.city_id
            and events.request_id = requests.request_id
    where events.event_type = 'reassigned'

),

contributions as (

    select
        city_id,
        department_id,
        category_id,
        requested_month,
        1 as is_request,
        0 as is_out,
        0 as is_in
    from requests

    union all

    select
        city_id,
        from_department_id,
        category_id,
        requested_month,
        0 as is_request,
        1 as is_out,
        0 as is_in
    from handoffs

    union all

    select
        city_id,
        to_department_id,
        category_id,
        requested_month,
        0 as is_request,
        0 as is_out,
        1 as is_in
    from handoffs

),

facts as (

    select
        {{ keys | join(', ') }},
        sum(is_request) as fct_requests,
        sum(is_out) as fct_handoffs_out,
        sum(is_in) as fct_handoffs_in

    from contributions
    group by {{ keys | join(', ') }}

),

final as (

    select
        {{- audit_group(keys) }}
        mart.requests,
        coalesce(facts.fct_requests, 0) as fct_requests,
        mart.handoffs_out,
        coalesce(facts.fct_handoffs_out, 0) as fct_handoffs_out,
        mart.handoffs_in,
        coalesce(facts.fct_handoffs_in, 0) as fct_handoffs_in,
        mart.duplicate_requests,
        mart.duplicate_rate,
        mart.department_share_of_category,
        mart.created_elsewhere_share,
        mart.valid_closed_requests,
        mart.median_hours_to_close,
        mart.all_cities_median_hours_to_close,
        mart.future_dated_requests

    {{ audit_mart_beside_facts(keys) }}

)

select * from final
