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
# Playwright (the dashboard's test) drives Debian's Chromium; it never downloads its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
export DAGSTER_HOME ?= $(CURDIR)/.dagster
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo dev dev-postgres test lint bi env clean

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

# The Evidence dashboard (bi/, docs/bi.md): builds the static site from the serving file,
# data/serving.duckdb (the publish of `make demo`; CIVIC311_SERVING names another), read
# only, then serves it on http://127.0.0.1:$(BI_PORT)/ until Ctrl-C. Needs Node 18+ and
# npm; `npm ci` runs first when bi/node_modules is missing or older than its lock.
BI_PORT ?= 3001
bi: $(VENV)/.synced
	python -m tooling.bi build
	python -m tooling.bi serve --port $(BI_PORT)

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
