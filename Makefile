# The course's commands. `make test` and `make lab` build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# nbgrader shells out to alembic and jupyter from its own environment: keep the venv first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)
export OMP_WAIT_POLICY := PASSIVE
export PIP_DISABLE_PIP_VERSION_CHECK := 1
ASSIGNMENT ?= pruning

.PHONY: setup lab test test-fast demo release grade benchmarks clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --progress-bar off --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e ".[dev]"
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=. lessons/00_compression_overview.ipynb $(if $(filter 0,$(shell id -u)),--allow-root,)

test: $(STAMP)
	$(BIN)/python -m pytest tests pruning_kit

test-fast: $(STAMP)
	$(BIN)/python -m pytest tests pruning_kit -m "not slow and not browser"

benchmarks: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf .pytest_cache build *.egg-info
