{#- P(X >= k) for X ~ Poisson(lambda), as a SQL double expression.

    k is an integer >= 0 and lambda a rate >= 0 (both SQL expressions). The
    terms P(X = i) = exp(-lambda + i ln(lambda) - lgamma(i + 1)) are computed
    in log space, so neither i! nor lambda^i overflows. The smaller tail is
    summed directly, so a tiny p-value keeps its precision:
      k = 0           1
      lambda = 0      0 (for k >= 1)
      k > lambda      the upper tail, i from k to k + 50 + 10 ceil(sqrt(lambda))
                      (the terms shrink at least geometrically past lambda, and
                      the bound lies ten standard deviations beyond k, so what
                      is left is far below double precision)
      k <= lambda     1 - the lower tail, i from 0 to k - 1
    Used by weekly_spike_test (macros/weekly_spikes.sql), so by mart_hotspots
    (unit test poisson_flags_emerging_weeks) and mart_department_joint_spikes. -#}
{% macro poisson_upper_tail(k, lambda) -%}
    case
        when cast({{ k }} as bigint) <= 0 then cast(1.0 as double)
        when cast({{ lambda }} as double) <= 0 then cast(0.0 as double)
        when cast({{ k }} as bigint) > cast({{ lambda }} as double) then least(1.0, list_sum(list_transform(
            range(
                cast({{ k }} as bigint),
                cast({{ k }} as bigint) + 50 + 10 * cast(ceil(sqrt(cast({{ lambda }} as double))) as bigint)
            ),
            lambda i: exp(
                -cast({{ lambda }} as double) + i * ln(cast({{ lambda }} as double)) - lgamma(i + 1)
            )
        )))
        else greatest(0.0, 1.0 - list_sum(list_transform(
            range(0, cast({{ k }} as bigint)),
            lambda i: exp(
                -cast({{ lambda }} as double) + i * ln(cast({{ lambda }} as double)) - lgamma(i + 1)
            )
        )))
    end
{%- endmacro %}
