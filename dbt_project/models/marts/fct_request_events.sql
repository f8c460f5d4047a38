{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['city_id', 'request_id'],
        on_schema_change='fail',
    )
}}

{#- What happened to each request, from its versions in snp_service_requests:
    its creation, closings, reopenings, other status changes and hand-offs
    between departments. An incremental run rewrites the events of the requests
    with a version in the partition window. -#}

with

changed as (

    select distinct
        city_id,
        request_id
    from {{ ref('snp_service_requests') }}
    where {{ changed_in_window("timezone('UTC', version_at)") }}

),

history as (

    select snapshot_rows.*
    from {{ ref('snp_service_requests') }} as snapshot_rows
    semi join changed using (city_id, request_id)

),

-- every name the history holds, current or not, mapped by the department rule
-- of int_departments (macros/departments.sql)
named_departments as (

    select distinct
        city_id,
        department
    from history
    where department is not null

),

departments as (

    {{ classified_departments('named_departments') }}

),

versions as (

    select
        history.city_id,
        history.request_id,
        history.requested_at,
        history.status,
        history.closed_at,
        timezone('UTC', history.version_at) as version_at,
        {{ canonical_department_id('history.city_id', 'history.department') }} as department_id,
        row_number() over (
            partition by history.city_id, history.request_id order by history.dbt_valid_from
        ) as version_seq

    from history
    left join departments
        on history.city_id = departments.city_id
            and history.department = departments.department

),

compared as (

    select
        *,
        lag(status) over by_version as previous_status,
        lag(closed_at) over by_version as previous_closed_at,
        lag(department_id) over by_version as previous_department_id

    from versions
    window by_version as (partition by city_id, request_id order by version_seq)

),

created as (

    select
        city_id,
        request_id,
        'created' as event_type,
        requested_at as event_at,
        cast(null as varchar) as from_status,
        cast(null as varchar) as to_status,
        cast(null as varchar) as from_department_id,
        department_id as to_department_id,
        version_at as updated_at,
        0 as event_order

    from compared
    where version_seq = 1

),

status_changes as (

    select
        city_id,
        request_id,
        case
            when closed_at is not null and (version_seq = 1 or previous_closed_at is null) then 'closed'
            when closed_at is null and previous_closed_at is not null then 'reopened'
            else 'status_changed'
        end as event_type,
        case
            when closed_at is not null and (version_seq = 1 or previous_closed_at is null) then closed_at
            else version_at
        end as event_at,
        previous_status as from_status,
        status as to_status,
        previous_department_id as from_department_id,
        department_id as to_department_id,
        version_at as updated_at,
        2 as event_order

    from compared
    where (version_seq = 1 and closed_at is not null)
        or (version_seq > 1 and (
            status is distinct from previous_status
            or (closed_at is null) <> (previous_closed_at is null)
        ))

),

reassignments as (

    select
        city_id,
        request_id,
        'reassigned' as event_type,
        version_at as event_at,
        previous_status as from_status,
        status as to_status,
        previous_department_id as from_department_id,
        department_id as to_department_id,
        version_at as updated_at,
        1 as event_order

    from compared
    where version_seq > 1 and department_id is distinct from previous_department_id

),

events as (

    select * from created
    union all
    select * from status_changes
    union all
    select * from reassignments

),

sequenced as (

    select
        *,
        row_number() over (
            partition by city_id, request_id order by event_at, event_order, updated_at
        ) as event_seq

    from events

),

timed as (

    select
        *,
        lag(event_at) over by_seq as previous_event_at,
        -- when the request reached the department it is leaving: its creation or the last hand-off
        last_value(case when event_type in ('created', 'reassigned') then event_at end ignore nulls) over (
            by_seq rows between unbounded preceding and 1 preceding
        ) as arrived_at

    from sequenced
    window by_seq as (partition by city_id, request_id order by event_seq)

),

final as (

    select
        city_id,
        request_id,
        cast(event_seq as integer) as event_seq,
        event_type,
        event_at,
        from_status,
        to_status,
        from_department_id,
        to_department_id,
        {{ hours_between('previous_event_at', 'event_at') }} as hours_since_previous_event,
        case
            when event_type = 'reassigned' then {{ hours_between('arrived_at', 'event_at') }}
        end as hours_with_from_department,
        updated_at

    from timed

)

select * from final
