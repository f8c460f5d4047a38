with

requests as (

    select * from {{ ref('fct_service_requests') }}

),

categories as (

    select * from {{ ref('service_categories') }}

),

service_types as (

    select distinct
        service_type_id,
        city_id,
        service_name,
        service_subtype,
        category_id,
        category_source

    from requests

),

final as (

    select
        service_types.service_type_id,
        service_types.city_id,
        service_types.service_name,
        service_types.service_subtype,
        service_types.category_id,
        categories.category_name,
        service_types.category_source

    from service_types
    left join categories on service_types.category_id = categories.category_id

)

select * from final
