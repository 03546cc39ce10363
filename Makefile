# crm360: the README's commands. `make demo` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# The venv's tools (dbt, dagster) first, without activating it.
export PATH := $(CURDIR)/$(BIN):$(PATH)

# Size of the demo's sample data (make demo PEOPLE=20000 DAYS=180). In fewer than about 90 days
# too few customers have visibly stopped buying for BG/NBD to identify dropout (p_alive then
# falls back to NULL, and says why in marts.clv_model_params).
PEOPLE ?= 5000
DAYS ?= 120
LANDING ?= landing
WAREHOUSE ?= warehouse/crm360.duckdb

.PHONY: install browser demo test lint format dev bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "crm360 needs Python 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# tests/orchestration/test_ui.py and the dbt docs test look at pages in Debian's headless
# chromium through chromedriver: installed here when missing and apt-get can (CI runs as root
# on Debian); elsewhere those tests skip.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then \
	  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else echo "chromium and chromedriver are missing and apt-get cannot install them: the browser tests skip"; fi

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/crm360 generate --out $(LANDING) --people $(PEOPLE) --days $(DAYS)
	$(BIN)/crm360 run --landing $(LANDING) --warehouse $(WAREHOUSE)
	@echo
	@echo "Sample landing files:  $(LANDING)/ (ground truth in $(LANDING)/_truth/)"
	@echo "Warehouse:             $(WAREHOUSE)"
	@echo "  raw.*                every loaded record with lineage"
	@echo "  audit.loaded_files   each file: checksum, rows loaded / quarantined / duplicate"
	@echo "  audit.quarantine     every rejected row with its reason"
	@echo "  marts.customer_360, identity_map, customer_touchpoints, customer_segments, ..."
	@echo "Published copy for analysts and BI (read-only, pseudonymised): $(dir $(WAREHOUSE))published.duckdb"
	@echo "  and as Parquet:      $(dir $(WAREHOUSE))published_parquet/"
	@echo "Quality report (GX Data Docs): $(dir $(WAREHOUSE))quality_docs/index.html"
	@echo "dbt docs (every model, column, lineage): $(dir $(WAREHOUSE))dbt_docs/index.html"
	@echo "Example queries:       examples/queries/ (crm360 sql < examples/queries/01_top_customers_by_lifetime_value.sql)"
	@echo "Query it:  $(BIN)/crm360 sql \"select * from marts.segment_summary\""
	@echo "Dagster UI: make dev"
	@echo "Report of this run, charts to open in a browser (works offline):"
	@echo "  $(or $(CRM360_REPORT),$(dir $(WAREHOUSE))report)/index.html"

test: install browser
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -m orchestration.definitions

# build_bench also publishes and times the example queries (bench/publish_bench.py)
bench: install
	$(BIN)/python -m bench.ingest_bench
	$(BIN)/python -m bench.build_bench

clean:
	rm -rf $(LANDING) warehouse .dagster_home bench/results
