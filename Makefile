# Cloud Ark: `make run` brings the whole stack up; `make test` runs the tests.
# Both set up the virtual environment themselves from pyproject.toml + uv.lock.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
SYNCED := $(VENV)/.synced
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup run test lint format protos bench clean

setup: $(SYNCED)

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9

$(SYNCED): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --inexact --quiet
	touch $@

uv.lock: pyproject.toml | $(UV)
	$(UV) lock --quiet

run: $(SYNCED)
	$(BIN)/python -m deploy.embedded.run

test: $(SYNCED)
	$(BIN)/pytest -q

# Its own stack in .bench-state/; writes docs/benchmarks.md. BENCH_ARGS="--quick".
bench: $(SYNCED)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(SYNCED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(SYNCED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

protos: $(SYNCED)
	rm -rf gen/cloudark
	$(BIN)/python -m tools.protogen gen

clean:
	rm -rf $(VENV) .state .bench-state .pytest_cache .mypy_cache .ruff_cache
