"""CIVIC311_RAW_PARTITIONS_PER_RUN: the days per backfill run of the raw assets, 366
unless set, and a value that is not a whole number of at least 1 refused with the
variable's name."""

import pytest

from orchestration.partitions import PARTITIONS_PER_RUN_ENV, raw_partitions_per_run


def test_unset_or_empty_is_a_quarter_and_a_number_is_taken():
    assert raw_partitions_per_run({}) == 366
    assert raw_partitions_per_run({PARTITIONS_PER_RUN_ENV: ""}) == 366
    assert raw_partitions_per_run({PARTITIONS_PER_RUN_ENV: "31"}) == 31
    assert raw_partitions_per_run({PARTITIONS_PER_RUN_ENV: " 365 "}) == 365


@pytest.mark.parametrize("value", ["0", "-5", "31.5", "a year"])
def test_anything_else_is_refused_naming_the_variable(value):
    with pytest.raises(ValueError, match=f"^{PARTITIONS_PER_RUN_ENV}="):
        raw_partitions_per_run({PARTITIONS_PER_RUN_ENV: value})
