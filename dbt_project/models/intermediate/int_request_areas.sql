{#- Every request placed in every area layer of its city: one row per
    (city, layer, request).

    Layers: each boundary layer the city declares (geography.boundaries), plus
    two every city has: `zip` (the ZIP the city reported) and `h3` (the H3 cell
    of the point, resolution var('h3_resolution'), default 8).

    A request is placed by its point (DuckDB spatial, against the layer's
    subdivided pieces); with no point, by the city's own code for its area in
    the layer (the extras key the layer's reported_code names) when the layer
    has that area, else through the layer's ZIP crosswalk; otherwise it is
    `unlocated`, with the reason, and still counted.

    Incremental: a run rejoins the requests updated in its window, and every
    request of a layer whose version (vintage + file digest) differs from the
    one its rows were joined with; other layers are left as they are. The
    spatial join and the H3 cells see only the points of the rows rejoined. -#}

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['city_id', 'layer', 'request_id'],
        on_schema_change='append_new_columns',
        post_hook="{{ delete_removed_layers() }}"
    )
}}

-- depends_on: {{ source('geography', 'boundaries') }}
-- depends_on: {{ source('geography', 'boundary_pieces') }}
-- depends_on: {{ source('geography', 'zip_areas') }}

{% set h3_resolution = var('h3_resolution', 8) | int %}
{% set has_boundaries = geography_loaded() %}

with

requests as (

    select
        city_id,
        request_id,
        updated_at,
        latitude,
        longitude,
        zip,
        extras
    from {{ ref('int_service_requests') }}

),

boundary_layers as (

    {% if has_boundaries -%}
    select distinct city_id, layer, vintage, layer_version, {{ boundaries_reported_code() }}
    from {{ source('geography', 'boundaries') }}
    {%- else -%}
    {{ no_rows(['city_id', 'layer', 'vintage', 'layer_version', 'reported_code']) }}
    {%- endif %}

),

layers as (

    select * from boundary_layers
    union all
    select distinct
        city_id,
        'zip' as layer,
        'as reported' as vintage,
        'zip:reported' as layer_version,
        null as reported_code
    from requests
    union all
    select distinct
        city_id,
        'h3' as layer,
        'h3 v4 resolution {{ h3_resolution }}' as vintage,
        'h3:{{ h3_resolution }}' as layer_version,
        null as reported_code
    from requests

),

{% if is_incremental() %}
-- the versions the rows were joined with: a few, so the anti join below is cheap
joined_versions as (

    select distinct
        city_id,
        layer,
        layer_version
    from {{ this }}

),

moved_layers as (

    select layers.*
    from layers
    anti join joined_versions
        on layers.city_id = joined_versions.city_id
            and layers.layer = joined_versions.layer
            and layers.layer_version = joined_versions.layer_version

),
{% endif %}

{% set work_columns %}
        requests.city_id,
        requests.request_id,
        requests.updated_at,
        requests.latitude,
        requests.longitude,
        requests.zip,
        requests.latitude is not null and requests.longitude is not null as has_point,
        layers.layer,
        layers.vintage,
        layers.layer_version,
        json_extract_string(requests.extras, '$.' || layers.reported_code) as reported_area_id
{% endset %}

{# The rows to (re)join: the window's requests in every layer, the others in the
    moved layers. Two branches, not `in window or layer moved`: that OR is tested
    only after every request is paired with every layer. #}
work as (

    select {{ work_columns }}
    from requests
    inner join layers using (city_id)
    where {{ changed_in_window('requests.updated_at') }}
    {% if is_incremental() %}

        union all

        select {{ work_columns }}
        from requests
        inner join moved_layers as layers using (city_id)
        where ({{ changed_in_window('requests.updated_at') }}) is not true
    {% endif %}

),

{% if has_boundaries %}
-- the points a boundary layer places (zip and h3 need no spatial join)
points as (

    select distinct
        city_id,
        request_id,
        latitude,
        longitude
    from work
    where has_point and layer not in ('zip', 'h3')

),

work_layers as (

    select distinct
        city_id,
        layer
    from work

),

-- the pieces of the layers rejoined
pieces as (

    select
        pieces.city_id,
        pieces.layer,
        pieces.area_id,
        pieces.geometry_wkb
    from {{ source('geography', 'boundary_pieces') }} as pieces
    semi join work_layers
        on pieces.city_id = work_layers.city_id and pieces.layer = work_layers.layer

),
{% endif %}

{# The spatial join matches on the point alone, so DuckDB runs it as a
    SPATIAL_JOIN; an equality on city in the join condition would turn it into
    a hash join that tests every piece. The city is checked in the aggregate
    instead: a point geocoded into a neighbouring city finds no area of its own. #}
point_areas as (

    {% if has_boundaries -%}
    select
        points.city_id,
        points.request_id,
        pieces.layer,
        min(pieces.area_id) filter (where pieces.city_id = points.city_id) as area_id
    from points
    inner join pieces
        on st_intersects(st_geomfromwkb(pieces.geometry_wkb), st_point(points.longitude, points.latitude))
    group by all
    {%- else -%}
    {{ no_rows(['city_id', 'request_id', 'layer', 'area_id']) }}
    {%- endif %}

),

zip_areas as (

    {% if has_boundaries -%}
    select city_id, layer, zip, area_id from {{ source('geography', 'zip_areas') }}
    {%- else -%}
    {{ no_rows(['city_id', 'layer', 'zip', 'area_id']) }}
    {%- endif %}

),

-- the areas of each layer's vintage: a reported code places a request only if it is one
layer_areas as (

    {{ boundary_areas() }}

),

cells as (

    select
        city_id,
        request_id,
        layer,
        h3_cell(latitude, longitude, {{ h3_resolution }}) as area_id
    from work
    where has_point and layer = 'h3'

),

placed as (

    select
        work.city_id,
        work.request_id,
        work.layer,
        work.vintage,
        work.layer_version,
        work.updated_at,
        work.has_point,
        work.reported_area_id,
        -- Without a point, the city's code beats the ZIP crosswalk: it names an
        -- area of this very layer, where a ZIP is another geography mapped onto it.
        case
            when work.layer = 'zip' then work.zip
            when work.layer = 'h3' then cells.area_id
            else coalesce(point_areas.area_id, coded.area_id, crosswalk.area_id)
        end as area_id,
        case
            when work.layer = 'zip' then 'reported_zip'
            when work.layer = 'h3' or point_areas.area_id is not null then 'point'
            when coded.area_id is not null then 'reported_code'
            when crosswalk.area_id is not null then 'zip_crosswalk'
        end as placed_by

    -- Equalities only: a condition on `work` alone would make these nested-loop
    -- joins. Only boundary layers have point areas and crosswalks ('zip' and
    -- 'h3' are reserved names), and only a request without a point is coded.
    from work
    left join point_areas
        on work.city_id = point_areas.city_id
            and work.request_id = point_areas.request_id
            and work.layer = point_areas.layer
    left join layer_areas as coded
        on work.city_id = coded.city_id
            and work.layer = coded.layer
            and (case when not work.has_point then work.reported_area_id end) = coded.area_id
    left join zip_areas as crosswalk
        on work.city_id = crosswalk.city_id
            and work.layer = crosswalk.layer
            and (case when not work.has_point then work.zip end) = crosswalk.zip
    left join cells
        on work.city_id = cells.city_id
            and work.request_id = cells.request_id
            and work.layer = cells.layer

),

final as (

    select
        city_id,
        request_id,
        layer,
        coalesce(area_id, 'unlocated') as area_id,
        case when area_id is null then 'unlocated' else placed_by end as placed_by,
        case
            when area_id is not null then null
            when layer = 'zip' then 'no_zip'
            when has_point then 'outside_layer'
            when reported_area_id is not null then 'reported_code_not_in_vintage'
            else 'no_coordinates'
        end as unlocated_reason,
        reported_area_id,
        vintage,
        layer_version,
        updated_at,
        '{{ invocation_id }}' as joined_in_run

    from placed

)

select * from final
