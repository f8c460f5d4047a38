-- raw/<city>/service_requests, for every protocol's suite: the rows whose change
-- stamp (source_updated_at) falls in the run's window, widened by the city's
-- lookback, and any row without one. {raw_table} and {id_column} are the city's
-- table and its registry id_field, {protocol_columns} the columns the protocol's
-- suite checks besides (its meta.protocol_columns): identifiers a bound
-- parameter cannot name.
select
    city_id,
    source_id,
    cast({id_column} as varchar) as id_field_value,
    source_updated_at,
    _loaded_at,
    -- how far the change stamp lies after the load (negative: before it)
    date_diff('second', _loaded_at, source_updated_at) / 86400.0 as source_updated_at_days_after_load,
    {protocol_columns},
    _dlt_load_id

from {raw_table}
where source_updated_at is null
    or (
        source_updated_at >= $start - coalesce($lookback_hours[city_id], 0) * interval 1 hour
        and source_updated_at < $end
    )
