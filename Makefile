# Every target starts from nothing but python3: it creates .venv when missing, installs the locked
# dependencies, then runs. The targets wrap the same `mlsys-lab` commands the README documents.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-from-lock
PYTEST_ARGS ?=
# Tests run on both cores (pytest-xdist). loadgroup keeps each course module's expensive session
# fixtures (nbgrader round trip, executed solution, variant kernel) on one worker: see
# tests/conftest.py. `make test PYTEST_WORKERS=0` runs in one process.
PYTEST_WORKERS ?= 2
PYTEST_XDIST := -n $(PYTEST_WORKERS) --dist loadgroup

.DEFAULT_GOAL := help
.PHONY: help install demo test test-fast lint format notebooks lab bench lock clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --progress-bar off --requirement requirements.lock
	$(BIN)/python -m pip install --quiet --progress-bar off --no-deps --no-build-isolation --editable .
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install the locked dependencies and the package

demo: $(STAMP)  ## Run the system's main job on embedded defaults
	$(BIN)/mlsys-lab demo

# The 25 slowest tests are listed at the end of `make test`, so a test that grows the suite shows up in CI's log.
test: $(STAMP)  ## Run the whole test suite, slow tests included (what CI runs)
	$(BIN)/python -m pytest $(PYTEST_XDIST) --durations=25 $(PYTEST_ARGS)

test-fast: $(STAMP)  ## Run the tests that take seconds, not minutes
	$(BIN)/python -m pytest $(PYTEST_XDIST) -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff (lint and format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)  ## Apply ruff's formatter and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

notebooks: $(STAMP)  ## Regenerate notebooks/ and solutions/ from assignments/source/ (refuses to overwrite edits)
	$(BIN)/mlsys-lab notebooks $(NOTEBOOKS_ARGS)

# Students answer in work/ (git-ignored), which `mlsys-lab lab` fills from notebooks/ without ever
# overwriting a file, so no build, test or pull can touch an answer. .jupyter-course/ is a
# project-local Jupyter config that takes priority over (without replacing) the user's own: it keeps
# nbgrader's Validate button and turns the instructor plugins off. Root and no display need no flag.
lab: $(STAMP)  ## Copy new modules into work/ and open JupyterLab there as a student
	$(BIN)/mlsys-lab lab $(LAB_ARGS)

bench: $(STAMP)  ## Run the benchmarks and print their tables (a few minutes)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; echo; done

lock:  $(STAMP)  ## Re-resolve requirements.lock from pyproject.toml (maintainers)
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --output-file requirements.lock

clean:  ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
