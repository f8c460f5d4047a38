-- raw/<city>/service_requests of a city on Socrata: the rows whose change stamp
-- (source_updated_at) falls in the run's window, widened by the city's lookback,
-- and any row without one. {raw_table} and {id_column} are the city's table and
-- its registry id_field (a bound parameter cannot name a table or a column).
select
    city_id,
    source_id,
    cast({id_column} as varchar) as id_field_value,
    source_updated_at,
    _loaded_at,
    -- how far the change stamp lies after the load (negative: before it)
    date_diff('second', _loaded_at, source_updated_at) / 86400.0 as source_updated_at_days_after_load,
    -- Socrata's system field :updated_at, from which source_updated_at is read
    _updated_at,
    _dlt_load_id

from {raw_table}
where source_updated_at is null
    or (
        source_updated_at >= $start - coalesce($lookback_hours[city_id], 0) * interval 1 hour
        and source_updated_at < $end
    )
