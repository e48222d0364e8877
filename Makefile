# Two commands a newcomer needs: `make demo` and `make test`.
# Each creates .venv if missing. torch is installed explicitly first, pinned to the
# release this project's machines carry on disk; pyproject.toml keeps a loose range.
VENV   := .venv
PYTHON := $(VENV)/bin/python
BOOT   ?= $(shell command -v python3.11 || command -v python3)
TORCH  := torch==2.14.1 torchvision==0.29.1
# e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu for the CPU-only build (no CUDA libraries)
TORCH_INDEX ?=
DEMO_OUT ?= runs/demo

.PHONY: demo test lint clean

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

test: $(VENV)/.dev
	$(PYTHON) -m pytest -q

lint: $(VENV)/.dev
	$(PYTHON) -m ruff check clipica tests

clean:
	rm -rf $(VENV) runs
