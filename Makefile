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
	$(BIN)/python -m pytest tests pruning_kit -m "not slow and not browser and not e2e"

# Present a notebook: Voilà runs it and shows only its text and widgets (no code).
# `make demo DEMO=lessons/01_magnitude_pruning.ipynb` presents a lesson instead.
DEMO ?= lessons/demo_live.ipynb
DEMO_PORT ?= 8866
demo: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/voila $(DEMO) --Voila.ip=127.0.0.1 --port=$(DEMO_PORT) --show_tracebacks=True --theme=light

# nbgrader: regenerate assignments/ from solutions/; autograde submitted/ into a grades
# CSV (autograded/grades_$(ASSIGNMENT).csv) and HTML feedback (feedback/).
release: $(STAMP)
	$(BIN)/python -m pruning_kit.course release

grade: $(STAMP)
	$(BIN)/python -m pruning_kit.course grade $(ASSIGNMENT)

benchmarks: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf .pytest_cache build *.egg-info
