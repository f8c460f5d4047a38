"""Partitions shared by every raw asset and the dbt models built from them.

A partition is a UTC day of Socrata's `:updated_at`: the rows that changed on
the portal that day. One definition serves every city, so a run of one day can
carry raw loads and the models built on them together.
"""

from dagster import DailyPartitionsDefinition

PARTITIONS_START = "2010-01-01"

daily_partitions = DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")
