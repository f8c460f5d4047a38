-- Hand-offs between departments per city and month (mart_department_handoffs). Evidence
-- writes no table for a query without rows, and a page reading it fails: a publish
-- without hand-offs gives one row of nulls instead.
with handoffs as (
    select
        handoffs.city_id,
        handoffs.from_department_id,
        coalesce(senders.department_name, handoffs.from_department_id) as from_department_name,
        handoffs.to_department_id,
        coalesce(receivers.department_name, handoffs.to_department_id) as to_department_name,
        handoffs.handoff_month,
        handoffs.handoffs,
        handoffs.median_hours_before_handoff
    from marts.mart_department_handoffs as handoffs
    left join marts.dim_department as senders on handoffs.from_department_id = senders.department_id
    left join marts.dim_department as receivers on handoffs.to_department_id = receivers.department_id
)
select * from handoffs
union all by name
select null as city_id where not exists (select 1 from handoffs)
