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

.PHONY: setup lab test test-fast demo release grade report benchmarks clean
.PHONY: lab-instructor update book slides
.PHONY: hub student-kit

setup: $(STAMP)

# The grading sandbox (pruning_kit/course/sandbox.py) starts every student's kernel under
# bubblewrap: installed with apt-get when missing and running as root (as the browser test installs
# chromium), otherwise a note says how; `make grade` refuses with the same advice while it is missing.
.PHONY: bubblewrap
setup test test-fast grade hub: bubblewrap
bubblewrap:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap (the grading sandbox) with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null || \
	    echo "note: apt-get could not install bubblewrap: grading refuses until it is installed"; \
	  else \
	    echo "note: the grading sandbox needs bubblewrap: sudo apt-get install bubblewrap" \
	         "(Debian, Ubuntu), sudo dnf install bubblewrap (Fedora)"; \
	  fi; }
# `make grade UNSANDBOXED=1` grades without the sandbox where it can't start: student code then
# runs with your rights (it could read solutions/ and rewrite the gradebook).
ifeq ($(UNSANDBOXED),1)
export PRUNING_KIT_ALLOW_UNSANDBOXED_GRADING := 1
endif

# The course package (what students install) and the instructor's grader package (grader/:
# hidden tests, reference solutions, the trusted checker), which only grading needs.
$(STAMP): pyproject.toml grader/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --progress-bar off --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e ".[dev]" -e ./grader
	touch $(STAMP)

# `make lab` is the students' JupyterLab, in their own working copy work/ (made on first run;
# course updates merged in at each start): of nbgrader's tools only Validate.
# `make lab-instructor` is JupyterLab in the course root with all of nbgrader's tools and the
# course's exchange (.hub/exchange). Each view has its own settings and workspace (.lab/).
# `make update` merges the course's committed changes into work/ as nbgitpuller does: run it
# after `git pull`. See tools/lab.py and tools/working_copy.py.
lab: $(STAMP)
	$(BIN)/python tools/lab.py student

lab-instructor: $(STAMP)
	$(BIN)/python tools/lab.py instructor

update: $(STAMP)
	$(BIN)/python tools/working_copy.py

# The book: every lesson executed with its defaults (each once; reused until the lesson or
# pruning_kit changes), as a static site in _build/book/ that opens from disk.
# `make book LESSONS="00 03"` builds only those lessons.
book: $(STAMP)
	$(BIN)/python tools/build_book.py $(LESSONS)

# A lesson as reveal.js slides, offline: `make slides LESSON=01` -> _build/slides/.
slides: $(STAMP)
	@test -n "$(LESSON)" || { echo "usage: make slides LESSON=01 (a lesson number or name prefix)" >&2; exit 2; }
	$(BIN)/python tools/build_slides.py $(LESSON)

test: $(STAMP)
	$(BIN)/python -m pytest tests pruning_kit grader/pruning_grader

test-fast: $(STAMP)
	$(BIN)/python -m pytest tests pruning_kit grader/pruning_grader -m "not slow and not browser and not e2e"

# Present a notebook: Voilà runs it and shows only its text and widgets (no code), with a kernel
# prepared before the page is opened and no request leaving the machine (tools/demo.py).
# `make demo DEMO=lessons/01_magnitude_pruning.ipynb` presents a lesson instead.
DEMO ?= lessons/demo_live.ipynb
DEMO_PORT ?= 8866
demo: $(STAMP)
	$(BIN)/python tools/demo.py $(DEMO) --port $(DEMO_PORT)

# nbgrader: regenerate assignments/ from solutions/; autograde submitted/ into a grades
# CSV (autograded/grades_$(ASSIGNMENT).csv) and HTML feedback (feedback/).
release: $(STAMP)
	$(BIN)/python -m pruning_kit.course release

# A class: `make grade ASSIGNMENT=pruning WORKERS=4 DB=postgresql://grader@host/gradebook`
# grades each student in a process of its own, 4 at a time, into one gradebook;
# SCHEDULER=tcp://host:8786 sends the same jobs to a Dask cluster.
WORKERS ?=
DB ?=
SCHEDULER ?=
grade: $(STAMP)
	$(BIN)/python -m pruning_kit.course grade $(ASSIGNMENT) $(if $(WORKERS),--workers $(WORKERS)) $(if $(DB),--db '$(DB)') $(if $(SCHEDULER),--scheduler '$(SCHEDULER)')

# What students get, for a class without a hub: the kit's wheel, the lessons and the released
# assignments, as a folder and a zip (no solutions, no hidden tests, no reference solutions).
KIT_OUT ?= _build/student-kit
student-kit: $(STAMP)
	$(BIN)/python -m pruning_kit.course student-kit '$(KIT_OUT)'

# What the class understood (one offline HTML page: scores per function and written answer,
# mistakes ranked by how many students made them, submissions that need a human, similar code):
# `make report ASSIGNMENT=pruning [DB=... OUT=...]`. `make grade` writes it too.
OUT ?=
report: $(STAMP)
	$(BIN)/python -m pruning_kit.course report $(ASSIGNMENT) $(if $(DB),--db '$(DB)') $(if $(OUT),--out '$(OUT)')

# A JupyterHub for a class on 127.0.0.1:$(HUB_PORT), from a roster (username,role CSV), with
# nbgrader's exchange, the formgrader for instructors and the Assignment List for students.
# For trying it out only (shared passwords, one Unix user): hub/README.md runs a real class.
HUB_PORT ?= 8000
ROSTER ?= hub/roster.example.csv
hub: $(STAMP)
	$(BIN)/python -m pruning_kit.course hub --roster '$(ROSTER)' --port $(HUB_PORT) $(if $(DB),--db '$(DB)')

benchmarks: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf .pytest_cache build _build *.egg-info
