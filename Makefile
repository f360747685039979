# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help venv node test unit lint format demo emulator bench clean

help:
	@echo "make demo      run the rotator end to end against the local cloud"
	@echo "make test      run every test (creates .venv and installs what is missing)"
	@echo "make lint      ruff + mypy"
	@echo "make emulator  start the local cloud and print its endpoints"
	@echo "make bench     run the benchmarks in benchmarks/"

# The virtual environment is rebuilt only when a requirements file changes.
$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

# Azurite (the storage emulator) comes from npm and is pinned by package-lock.json.
node_modules/.bin/azurite: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node: node_modules/.bin/azurite

test: venv node
	$(PY) -m pytest $(PYTEST_ARGS)

unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

demo: venv
	$(PY) -m rotation demo

emulator: venv
	$(PY) -m emulator serve

bench: venv
	$(PY) -m benchmarks.emulator_throughput

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
