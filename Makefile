# The two commands: `make run` (the main job) and `make test` (lint, types, tests). Both build .venv themselves.
# Torch is installed first, pinned (a CPU wheel here); override with TORCH_SPEC='torch==X.Y.Z' and, where the
# pinned wheel is not local, TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu.

empty :=
space := $(empty) $(empty)
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX_URL ?=
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_STAMP := $(VENV)/.torch-$(subst =,_,$(subst <,_,$(subst >,_,$(subst $(space),_,$(TORCH_SPEC)))))
INDEX_OPT := $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL),)

.PHONY: run test lint typecheck pytest bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(TORCH_STAMP): | $(PY)
	$(PIP) install --quiet $(INDEX_OPT) "$(TORCH_SPEC)"
	touch $@

$(VENV)/.run-deps: pyproject.toml $(TORCH_STAMP)
	$(PIP) install --quiet -e ".[viz]"
	touch $@

$(VENV)/.test-deps: pyproject.toml $(TORCH_STAMP)
	$(PIP) install --quiet -e ".[test,viz]"
	touch $@

# the main job: tune ten optimizers (and their schedules) on scikit-learn's digits with the CE sampler; 2-5 minutes
# on 2 cores; leaderboard on stdout, report/model/study under skopt_nn_runs/
RUN_ARGS ?= sklearn:digits --n-trials 150 --epochs 20 --sampler cem --out skopt_nn_runs

run: $(VENV)/.run-deps
	$(VENV)/bin/skopt-nn tune $(RUN_ARGS)

lint: $(VENV)/.test-deps
	$(PY) -m ruff check skopt_nn tests examples benchmarks
	$(PY) -m ruff format --check skopt_nn tests examples benchmarks

typecheck: $(VENV)/.test-deps
	$(PY) -m mypy skopt_nn

pytest: $(VENV)/.test-deps
	$(PY) -m pytest -q -p no:cacheprovider

test: lint typecheck pytest

bench: $(VENV)/.test-deps
	cd benchmarks && ../$(PY) bench_estimators.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
