{#- Fails with one row per key that is missing or appears more than once. A raw
    table a city has not loaded yet passes: there is nothing in it to check. -#}
{% test keys_present_and_unique(model, columns) %}

{%- if execute and load_relation(model) is none %}
select null as nothing_loaded_yet where false
{%- else %}
select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
    or {% for column in columns %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %}
{%- endif %}

{% endtest %}
