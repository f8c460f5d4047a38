{#- The run window Dagster passes to every incremental model.

    env:  CIVIC311_MIN_DATE, CIVIC311_MAX_DATE   the window [min, max) of UTC days,
          as YYYY-MM-DD (orchestration/resources.py `window_env` sets them)
    vars: lookback_days   how far before the window's start a late update is
                          still picked up (default 3)

    The window is an environment variable, not a var, and is read only when dbt
    executes (`execute`): dbt then never records it while parsing, so a run with a
    new window reuses the parsed project (partial parse). A new `--vars` would
    make dbt parse the whole project again, about 10 s a step.

    `changed_in_window('updated_at')` is a SQL condition: true for rows whose
    column falls in [min - lookback_days, max) on an incremental run with a
    window, and `true` on a full build or when no window is given, so a plain
    `dbt build` always computes everything. `always=true` applies the window
    outside incremental models too (the snapshot reads it). A window that is
    half set, or not two dates in order, stops the build. -#}
{% macro run_window() -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set min_date = env_var('CIVIC311_MIN_DATE', '') | trim -%}
    {%- set max_date = env_var('CIVIC311_MAX_DATE', '') | trim -%}
    {%- if not min_date and not max_date -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set iso = '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' -%}
    {%- if not (modules.re.match(iso, min_date) and modules.re.match(iso, max_date) and min_date < max_date) -%}
        {{ exceptions.raise_compiler_error(
            "the run window CIVIC311_MIN_DATE='" ~ min_date ~ "', CIVIC311_MAX_DATE='" ~ max_date
            ~ "' is not two dates YYYY-MM-DD with the first before the second: set both "
            ~ "(e.g. 2026-11-01 and 2026-11-02 for one day), or unset both to build everything") }}
    {%- endif -%}
    {{ return((min_date, max_date)) }}
{%- endmacro %}

{% macro changed_in_window(column, always=false) -%}
    {%- set window = run_window() -%}
    {%- if (always or is_incremental()) and window -%}
        ({{ column }} >= cast('{{ window[0] }} 00:00:00+00' as timestamptz) - to_days({{ var('lookback_days', 3) | int }})
        and {{ column }} < cast('{{ window[1] }} 00:00:00+00' as timestamptz))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
