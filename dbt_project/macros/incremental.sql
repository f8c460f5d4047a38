{#- The partition window Dagster passes to every incremental model.

    vars: min_date, max_date   the window [min_date, max_date) of UTC days
          lookback_days        how far before min_date a late update is still
                               picked up (default 3)

    `changed_in_window('updated_at')` is a SQL condition: true for rows whose
    column falls in [min_date - lookback_days, max_date) on an incremental run
    with a window, and `true` on a full build or when no window is given, so a
    plain `dbt build` always computes everything. `always=true` applies the
    window outside incremental models too (the snapshot reads it). -#}
{% macro changed_in_window(column, always=false) -%}
    {%- set min_date = var('min_date', none) -%}
    {%- set max_date = var('max_date', none) -%}
    {%- if (always or is_incremental()) and min_date and max_date -%}
        ({{ column }} >= cast('{{ min_date }} 00:00:00+00' as timestamptz) - to_days({{ var('lookback_days', 3) | int }})
        and {{ column }} < cast('{{ max_date }} 00:00:00+00' as timestamptz))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
