# The habits of this project. `make run` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

INSPECTOR := .tools/node_modules/@modelcontextprotocol/inspector

.PHONY: install run test lint format typecheck unit integration bench load eval-docs chaos clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed; installing python3-venv (Debian)"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@touch $(STAMP)

install: $(STAMP)  ## create/update the virtualenv

# The MCP Inspector CLI checks Heron's MCP servers as a third-party client would. It needs
# npm; without it the test that uses it is skipped (and says so).
$(INSPECTOR):
	@if command -v npm >/dev/null 2>&1; then \
	  mkdir -p .tools && cd .tools && \
	  npm install --no-audit --no-fund --silent @modelcontextprotocol/inspector@0.15.0 \
	  || { rm -rf node_modules; echo "npm install failed: the MCP Inspector test will be skipped"; }; \
	else echo "npm not found: the MCP Inspector test will be skipped"; fi

# The browser tests drive Debian's chromium (Playwright never downloads a browser here).
# Installing it needs root; without it the browser tests are skipped (and say so).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get -o DPkg::Lock::Timeout=300 update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
	    --no-install-recommends chromium >/dev/null; \
	else echo "chromium not installed and not root: the browser tests will be skipped"; fi

run: $(STAMP)  ## run Heron (embedded PostgreSQL when DATABASE_URL is unset)
	$(BIN)/heron run

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test: lint typecheck $(INSPECTOR) $(CHROMIUM)  ## the whole suite: lint, types, unit, integration, e2e, chaos
	$(BIN)/pytest -q

bench: $(STAMP)  ## queue benchmark, Heron vs PGQueuer, results in benchmarks/results/
	$(BIN)/heron bench queue

load: $(STAMP)  ## Events API load (locust, 50 users, 60 s) on `heron run`; benchmarks/results/load.json
	$(BIN)/python -m heron.bench.load

# Docs search judged on the whole PostgreSQL 15 manual (Debian's postgresql-doc-15, installed
# when missing): recall@1/5/10 and MRR of the development and held-out questions in
# benchmarks/docs_eval/. A full ingest with the local model: about eight minutes on 2 cores.
PG_MANUAL := /usr/share/doc/postgresql-doc-15/html
eval-docs: $(STAMP)  ## docs search quality on the PostgreSQL manual; benchmarks/results/docs_eval.json
	@test -d $(PG_MANUAL) || { echo "installing postgresql-doc-15 (the PostgreSQL 15 manual)"; \
	  apt-get update -qq && apt-get install -y -qq postgresql-doc-15; }
	$(BIN)/python -m heron.bench.docs_eval --fresh --manual $(PG_MANUAL) \
	  --output benchmarks/results/docs_eval.json

# 300 mentions into three `heron run` processes while they are SIGKILLed and frozen,
# PostgreSQL restarts, Slack and the model fail (tests/chaos/storm.py); SEED=n replays one.
chaos: $(STAMP)  ## chaos storm: every mention answered exactly once; benchmarks/results/chaos.json
	$(BIN)/python -m tests.chaos.storm --mentions 300 $(if $(SEED),--seed $(SEED))

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache
