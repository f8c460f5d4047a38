{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['city_id', 'request_id'],
        on_schema_change='fail',
    )
}}

{#- One row per (city, request), current state. An incremental run rewrites the
    requests that changed in the partition window, plus those whose duration was
    held back as lying after the previous build's as-of time (that rule moves
    with the clock). -#}

with

changed as (

    select
        city_id,
        request_id
    from {{ ref('int_service_requests') }}
    where {{ changed_in_window('updated_at') }}

    {% if is_incremental() %}
    union

    select city_id, request_id
    from {{ this }}
    where hours_to_close_null_reason = 'date_in_future'
    {% endif %}

),

requests as (

    select requests.*
    from {{ ref('int_service_requests') }} as requests
    semi join changed using (city_id, request_id)

),

service_types as (

    select * from {{ ref('int_service_types') }}

),

departments as (

    select * from {{ ref('int_departments') }}

),

slas as (

    select * from {{ ref('service_level_agreements') }}

),

cities as (

    select
        city_id,
        closed_on_creation_seconds
    from {{ ref('cities') }}

),

staff_channels as (

    select distinct
        city_id,
        lower(trim(channel)) as channel
    from {{ ref('staff_channels') }}

),

classified as (

    select
        requests.*,
        service_types.category_id,
        service_types.category_source,
        {{ canonical_department_id('requests.city_id', 'requests.department') }} as department_id,
        {{ department_is_mapped('requests.department') }} as department_mapped,
        slas.sla_hours,
        staff_channels.channel is not null as is_staff_initiated,
        cities.closed_on_creation_seconds

    from requests
    left join service_types
        on requests.city_id = service_types.city_id
            and requests.service_name is not distinct from service_types.service_name
            and requests.service_subtype is not distinct from service_types.service_subtype
    left join departments
        on requests.city_id = departments.city_id
            and requests.department = departments.department
    left join slas
        on requests.city_id = slas.city_id
            and requests.service_name = slas.service_name
    left join cities
        on requests.city_id = cities.city_id
    left join staff_channels
        on requests.city_id = staff_channels.city_id
            and lower(trim(requests.channel)) = staff_channels.channel

),

validated as (

    select
        *,
        case
            when requested_at < timestamptz '2000-01-01 00:00:00+00'
                or closed_at < timestamptz '2000-01-01 00:00:00+00'
                then 'date_before_2000'
            when requested_at > {{ as_of() }} or closed_at > {{ as_of() }}
                then 'date_in_future'
            when closed_at is null then 'not_closed'
            when closed_at < requested_at then 'closed_before_requested'
        end as hours_to_close_null_reason,
        coalesce(due_at, requested_at + to_seconds(cast(round(sla_hours * 3600) as bigint))) as sla_due_at,
        case
            when due_at is not null then 'city_due_date'
            when sla_hours is not null then 'sla_seed'
        end as sla_source

    from classified

),

measured as (

    select
        *,
        case
            when hours_to_close_null_reason is null
                then {{ hours_between('requested_at', 'closed_at') }}
        end as hours_to_close

    from validated

),

final as (

    select
        city_id,
        request_id,
        md5(concat_ws('|', city_id, service_name, coalesce(service_subtype, ''))) as service_type_id,
        category_id,
        category_source,
        department_id,
        department_mapped,
        coalesce(zip, 'unlocated') as area_id,
        requested_at,
        requested_at_local,
        cast(requested_at_local as date) as requested_date_local,
        cast(date_trunc('month', requested_at_local) as date) as requested_month,
        cast(date_trunc('week', requested_at_local) as date) as requested_week,
        updated_at,
        closed_at,
        closed_at_local,
        due_at,
        sla_due_at,
        sla_source,
        status,
        source_status,
        channel,
        service_name,
        service_subtype,
        service_code,
        department,
        address,
        zip,
        latitude,
        longitude,
        is_duplicate,
        parent_request_id,
        category_id = 'information_only' as is_information_only,
        is_staff_initiated,
        hours_to_close,
        hours_to_close_null_reason,
        case
            when hours_to_close is not null and sla_due_at is not null
                then closed_at <= sla_due_at
        end as closed_within_sla,
        case
            when category_id = 'information_only' then 'information_only'
            when is_duplicate then 'duplicate'
            when
                hours_to_close_null_reason
                in ('date_before_2000', 'date_in_future', 'closed_before_requested')
                then 'invalid_duration'
            -- a crew's own entry or a request closed as it was made: the gap between
            -- the two times is how the work was logged, not how long a response took
            when is_staff_initiated then 'staff_initiated'
            when date_diff('second', requested_at, closed_at) <= closed_on_creation_seconds
                and hours_to_close is not null
                then 'closed_on_creation'
        end as exclusion_reason,
        loaded_at

    from measured

)

select * from final
