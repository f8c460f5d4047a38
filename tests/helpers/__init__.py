"""What tests share besides fixtures: paths to the real samples, warehouse and dbt
helpers, the samples warehouse, the NYC sample's backfill, hand-computed oracles,
the docs' command checker and the killable child processes. Fixtures and pytest
hooks stay in the conftest.py files; tests import these modules, never a conftest."""
