{#- A request's canonical department id: the seed `departments` maps the city's
    own department or queue name; a request naming none is `<city_id>.unassigned`.
    `departments` is the alias of the seed, left-joined on (city_id, source_department). -#}
{% macro canonical_department_id(city_id, department, departments='departments') -%}
    case
        when {{ department }} is null then {{ city_id }} || '.unassigned'
        else {{ departments }}.department_id
    end
{%- endmacro %}
