# civic311: `make demo` runs the whole pipeline offline; `make test` runs the suite.
# Both create the environment first when it is missing (Python 3.11 and pip are
# all they assume).

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .uv/bin/uv
VENV := .venv

export UV_COMPILE_BYTECODE := 1
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export RUNTIME__DLTHUB_TELEMETRY := false
export GX_ANALYTICS_ENABLED := False
export DAGSTER_HOME ?= $(CURDIR)/.dagster
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo dev dev-postgres test lint env clean

demo: env $(DAGSTER_HOME)/dagster.yaml
	civic311 demo

dev: env $(DAGSTER_HOME)/dagster.yaml
	civic311 dev

# The UI with Dagster's runs and events in a local PostgreSQL cluster (data/postgres/),
# its own instance there, stopped with the UI; needs CIVIC311_PG_PASSWORD (README).
dev-postgres: env
	civic311 dev --postgres

# The lint runs first: a lint failure fails `make test` (and CI) too. The tests run in
# TEST_WORKERS pytest-xdist processes (the machine and CI have 2 cores; 0 runs them in
# one); --dist loadfile keeps each file, and the files sharing the NYC backfill, on one
# worker (tests/conftest.py).
TEST_WORKERS ?= 2
test: env lint
	pytest -n $(TEST_WORKERS) --dist loadfile

# ruff, the import contracts (the runtime never imports tooling/), and sqlfluff over
# the dbt models (`python -m tooling.sql_lint --fix PATH` fixes one file: review the diff,
# sqlfluff's fixes can break Jinja call blocks and column alias lists).
lint: env
	ruff check .
	ruff format --check .
	lint-imports
	python -m tooling.sql_lint

# The dbt manifest too: the code location reads it and parses nothing itself
# (`civic311 prepare` parses only when a dbt file changed since the last parse).
env: $(VENV)/.synced
	civic311 prepare

# uv comes from PyPI into its own small venv, then installs the locked set.
$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python 3.11
	@touch $@

$(DAGSTER_HOME)/dagster.yaml: orchestration/dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp $< $@

clean:
	rm -rf data .dagster dbt_project/target
