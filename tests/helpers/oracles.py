"""Textbook versions of the marts' statistics, written independently of the SQL so
tests can check the marts against them."""

from __future__ import annotations

import math

from tests.helpers.data import SHARED_DATA

# MyLA311's 2017 export as a SQL CTE `la_export`, read independently of the loader:
# its wall-clock times (Los Angeles) as UTC instants.
LA_EXPORT = f"""
la_export as (
    select
        RequestType as service_name,
        Owner as owner,
        RequestSource as channel,
        timezone('America/Los_Angeles', strptime(CreatedDate, '%m/%d/%Y %I:%M:%S %p')) as created_at,
        timezone('America/Los_Angeles', strptime(ClosedDate, '%m/%d/%Y %I:%M:%S %p')) as closed_at,
        timezone('America/Los_Angeles', strptime(UpdatedDate, '%m/%d/%Y %I:%M:%S %p')) as updated_at
    from read_csv('{SHARED_DATA / "la" / "myla311_2017_subset.csv"}', all_varchar = true)
)
"""


def poisson_upper_tail(k: int, rate: float) -> float:
    """P(X >= k) for X ~ Poisson(rate), summed term by term in log space."""
    if k <= 0:
        return 1.0
    if rate == 0:
        return 0.0
    return sum(math.exp(-rate + i * math.log(rate) - math.lgamma(i + 1)) for i in range(k, k + 400))


def kaplan_meier_median(durations: list[tuple[float, bool]]) -> float | None:
    """The Kaplan-Meier median of (hours, closed) pairs, one event time at a time:
    the first event time at which the survival estimate reaches 0.5."""
    survival = 1.0
    for time in sorted({hours for hours, closed in durations if closed}):
        at_risk = sum(1 for hours, _ in durations if hours >= time)
        events = sum(1 for hours, closed in durations if closed and hours == time)
        survival *= 1 - events / at_risk
        if survival <= 0.5 + 1e-9:
            return time
    return None
