{#- Rows whose `column_name` is neither `*` (any city) nor a city of the seed cities. -#}
{% test city_or_any(model, column_name) %}

select given.*
from {{ model }} as given
anti join {{ ref('cities') }} as cities on given.{{ column_name }} = cities.city_id
where given.{{ column_name }} <> '*'

{% endtest %}
