{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['city_id', 'requested_month'],
        on_schema_change='fail',
    )
}}

{#- Response times per city, department, category and city-local month of
    request, open requests measured at their city's as-of (dim_city.as_of).
    macros/response_times.sql holds the figures and the incremental rule. -#}

{{ response_time_figures(['department_id', 'category_id']) }}
