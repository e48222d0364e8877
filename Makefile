# Two commands a newcomer needs: `make demo` and `make test` (the fast tier, minutes).
# `make test-all` runs every test (slow, Ray, notebooks, real architectures, kill tests): CI's.
# Each creates .venv if missing. torch is installed explicitly first, pinned to the
# release this project's machines carry on disk; pyproject.toml keeps a loose range.
VENV   := .venv
PYTHON := $(VENV)/bin/python
BOOT   ?= $(shell command -v python3.11 || command -v python3)
TORCH  := torch==2.14.1 torchvision==0.29.1
# e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu for the CPU-only build (no CUDA libraries)
TORCH_INDEX ?=
DEMO_OUT ?= runs/demo

# the fast tier: every test but the heavy groups (markers registered in pyproject.toml;
# `pytest -m ray` runs one group alone)
FAST   := not (slow or ray or notebooks or real_arch or subprocess)
# one BLAS/torch thread per test process: on a busy machine (CI, shared cores) torch's and BLAS's
# spinning thread pools made the SAE tests 30x slower (5.7 s -> 162 s at load 6-18); on 2 idle
# cores one thread is as fast for these small problems
TEST_THREADS ?= 1
.PHONY: demo test test-all docs-tables lint clean

$(PYTHON):
	$(BOOT) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip

$(VENV)/.torch: | $(PYTHON)
	$(PYTHON) -m pip install $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	touch $@

$(VENV)/.base: pyproject.toml $(VENV)/.torch
	$(PYTHON) -m pip install $(TORCH) -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.torch
	$(PYTHON) -m pip install $(TORCH) -e '.[dev]'
	touch $@ $(VENV)/.base

demo: $(VENV)/.base
	$(VENV)/bin/clipica demo --out $(DEMO_OUT)

# two pytest workers (pytest-xdist), one per core, each on one thread; the slow tests start
# first and Ray's share one worker (tests/conftest.py). TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
WORKERS = $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup)

test: $(VENV)/.dev
	OMP_NUM_THREADS=$(TEST_THREADS) $(PYTHON) -m pytest -q -m "$(FAST)" $(WORKERS)

test-all: $(VENV)/.dev
	OMP_NUM_THREADS=$(TEST_THREADS) $(PYTHON) -m pytest -q -m "" --durations=20 $(WORKERS)

# the result tables of README.md and docs/ from the JSON the commands wrote (each table's
# marker names its file, e.g. runs/demo/summary.json); a missing file leaves its table as it is
docs-tables: $(VENV)/.base
	$(PYTHON) tools/docs_tables.py

lint: $(VENV)/.dev
	$(PYTHON) -m ruff check clipica tests

clean:
	rm -rf $(VENV) runs
