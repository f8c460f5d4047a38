{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['city_id', 'requested_month'],
        on_schema_change='fail',
    )
}}

{#- Response times per city, department, source service type (the city's own
    name and subtype) and city-local month of request: mart_response_times'
    figures, with the spread of each type's closing times. Categories stay the
    cross-city view; this is the detail inside one (bulky_items pools LA's bulky
    items, e-waste and appliances). macros/response_times.sql holds the figures
    and the incremental rule. -#}

{{ response_time_figures(
    ['department_id', 'service_type_id'],
    carried=['service_name', 'service_subtype', 'category_id'],
    spread=true,
) }}
