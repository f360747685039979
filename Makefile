# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help venv node test unit lint format demo emulator bench infra-check az-venv az-test clean

help:
	@echo "make demo      run the rotator end to end against the local cloud"
	@echo "make test      run every test (creates .venv and installs what is missing)"
	@echo "make lint      ruff + mypy (product code and tests)"
	@echo "make emulator  start the local cloud with the rotator's identity and print its endpoints"
	@echo "make bench     run the benchmarks in benchmarks/"
	@echo "make infra-check  parse the Bicep templates and run checkov on infra/"
	@echo "make az-test   the README's troubleshooting guide with the real Azure CLI (installs it into .venv-az)"

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

demo: venv node
	$(PY) -m rotation demo

# The local cloud with the rotator's profile (emulator/rotator_profile.py); `python -m localcloud serve`
# starts the bare, generic one.
emulator: venv
	$(PY) -m emulator serve $(EMULATOR_ARGS)

INFRA_VENV  ?= .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed

# checkov lives in its own virtual environment: its dependencies must not move the app's pins.
$(INFRA_STAMP): requirements-infra.txt
	@test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	@echo '*' > $(INFRA_VENV)/.gitignore
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	@touch $@

# Bicep checks without the Bicep CLI: the template tests (pycep) and checkov, which must report zero
# failed checks and parse every template it scans (the Graph module uses `extension`, which checkov's
# pinned pycep cannot parse; tests/infra checks that file).
infra-check: venv $(INFRA_STAMP)
	$(PY) -m pytest tests/infra -q $(PYTEST_ARGS)
	$(INFRA_VENV)/bin/checkov -d infra --framework bicep --quiet --compact --skip-download \
		--skip-path infra/modules/operator-api.bicep > $(INFRA_VENV)/checkov.log; \
		status=$$?; cat $(INFRA_VENV)/checkov.log; \
		if grep -q 'Parsing errors' $(INFRA_VENV)/checkov.log; then echo 'checkov could not parse a template'; exit 1; fi; \
		exit $$status

AZ_VENV  ?= .venv-az
AZ_STAMP := $(AZ_VENV)/.installed

# The Azure CLI lives in its own virtual environment too (its dependency tree is large, and `make test`
# stays light): `make az-test` drives it against the local cloud.
$(AZ_STAMP): requirements-az.txt
	@test -x $(AZ_VENV)/bin/python || $(PYTHON) -m venv $(AZ_VENV)
	@echo '*' > $(AZ_VENV)/.gitignore
	$(AZ_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-az.txt
	@touch $@

az-venv: $(AZ_STAMP)

az-test: venv $(AZ_STAMP)
	ROTATION_AZ_CLI=$(CURDIR)/$(AZ_VENV)/bin/az $(PY) -m pytest tests/az -m az $(PYTEST_ARGS)

bench: venv
	$(PY) -m benchmarks.emulator_throughput
	$(PY) -m benchmarks.cold_start
	$(PY) -m benchmarks.fleet
	$(PY) -m benchmarks.time_to_proof
	$(PY) -m benchmarks.rotation_cost
	$(PY) -m benchmarks.sweep_scale --secrets 2000

clean:
	rm -rf $(VENV) $(INFRA_VENV) $(AZ_VENV) node_modules .mypy_cache .ruff_cache .pytest_cache .troubleshoot
