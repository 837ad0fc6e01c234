# The front door. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR := demo
DEMO_OFFICERS ?= 2000
# make test's parallel pytest-xdist workers. Most of the suite waits on the broker, the
# database and child processes, so more workers than the two cores pays (measured: README).
TEST_WORKERS ?= 4

.PHONY: help install demo test test-fast lint clean bench bench-quick conformance

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the ledger with test extras

demo: $(STAMP) ## Generate ~2,000 officers, ingest into a fresh embedded store, project, show records, a plan, a gap report
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(BIN)/ledger --store sqlite:///$(DEMO_DIR)/ledger.db migrate
	$(BIN)/ledger generate --officers $(DEMO_OFFICERS) --seed 7 --out $(DEMO_DIR)/commands.jsonl
	@echo "generated $$(wc -l < $(DEMO_DIR)/commands.jsonl) commands in $(DEMO_DIR)/commands.jsonl"
	@# The generated stream contains a few percent of invalid commands on purpose,
	@# so ingest exits 1 (some lines rejected); anything worse stops the demo.
	$(BIN)/ledger --store sqlite:///$(DEMO_DIR)/ledger.db ingest $(DEMO_DIR)/commands.jsonl --progress --show-rejected 5; \
	  rc=$$?; [ $$rc -le 1 ] || exit $$rc
	$(BIN)/ledger --store sqlite:///$(DEMO_DIR)/ledger.db project --until-idle
	$(BIN)/ledger --store sqlite:///$(DEMO_DIR)/ledger.db stats
	$(BIN)/ledger --store sqlite:///$(DEMO_DIR)/ledger.db record OFF-0000042
	$(BIN)/ledger --store sqlite:///$(DEMO_DIR)/ledger.db competencies OFF-0000042
	$(BIN)/ledger --store sqlite:///$(DEMO_DIR)/ledger.db ministry MOF
	$(BIN)/ledger --store sqlite:///$(DEMO_DIR)/ledger.db plan MOF 2024-25
	$(BIN)/ledger --store sqlite:///$(DEMO_DIR)/ledger.db gaps MOF

test: $(STAMP) ## Run the whole test suite in parallel (starts the brokers and checks PostgreSQL itself)
	bash infra/install-chromium.sh  # Debian's Chromium for the console's browser tests
	cd tests/vc-verifier && npm ci --no-audit --no-fund --silent  # the independent credential verifier (pinned)
	@# Each worker has its own broker, template database, key files and ports (tests/conftest.py);
	@# loadgroup keeps a module whose tests share one expensive fixture on one worker.
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=15

test-fast: $(STAMP) ## Only the tests that need no service and no child processes
	$(BIN)/pytest -q -m "not postgres and not kafka and not slow"

bench: $(STAMP) ## Full benchmarks (1M-event rebuild, 100k-officer queries); writes BENCHMARKS.md
	@# wrk, the load generator of the online figures, is Debian's package.
	command -v wrk >/dev/null || { S=$$([ "$$(id -u)" = 0 ] || echo sudo); $$S apt-get install -y wrk \
	  || { $$S apt-get update && $$S apt-get install -y wrk; }; }
	$(BIN)/python bench/run.py
	$(BIN)/python bench/online_bench.py --profile  # POST /commands and /healthz under wrk, beside a bare ASGI app
	$(BIN)/python bench/credentials_bench.py  # credentials export, 10,000 officers (~15 min on 2 cores)
	$(BIN)/python bench/corrections_bench.py  # a late fact and a retraction against history length and store size
	$(BIN)/python bench/migration_bench.py  # every migration over 100k and 1M events (linear in the store)
	$(BIN)/python bench/xapi_bench.py  # the LRS: 1M statements stored, GET with each filter, POST single and 50 (~40 min)

bench-quick: $(STAMP) ## Small benchmarks, under two minutes; writes BENCHMARKS-quick.md
	$(BIN)/python bench/run.py --quick

conformance: $(STAMP) ## ADL's xAPI LRS conformance suite (statement and about tests) against a fresh ledger; fails below 95 %
	$(BIN)/python bench/xapi_conformance.py --min-percent 95

lint: $(STAMP) ## ruff, mypy --strict and vulture (dead code) on ledger and tests, as configured in pyproject.toml (CI runs it after the tests)
	$(BIN)/pip install --quiet ruff==0.17.5 mypy==2.4.1 vulture==2.16
	$(BIN)/ruff check ledger tests
	$(BIN)/mypy ledger tests
	$(BIN)/vulture

clean: ## Remove the virtualenv, demo data and caches
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache ledger.db ledger.db-*
