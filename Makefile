# Set-up and entry points. Every target bootstraps .venv itself from a Python >= 3.12.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYENV_ROOT ?= $(HOME)/.pyenv

# PYTHON env var first, then python3.13/python3.12 on PATH, then pyenv's versions.
FIND_PYTHON = for c in "$$PYTHON" python3.13 python3.12 $$(ls -d $(PYENV_ROOT)/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do \
	  [ -n "$$c" ] || continue; \
	  command -v "$$c" >/dev/null 2>&1 || continue; \
	  "$$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v "$$c"; break; }; \
	done

.PHONY: demo test test-all test-deepstrf bench docs clean

$(VENV)/.installed: pyproject.toml
	@py=$$($(FIND_PYTHON)); \
	if [ -z "$$py" ]; then echo "bayesstrf needs Python >= 3.12: install python3.12 (or set PYTHON=/path/to/python3.12)" >&2; exit 1; fi; \
	[ -x $(PY) ] || "$$py" -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

# The main job on the embedded default data: a seeded simulated recording (2 neurons,
# natural-like stimulus, 4 segments x 4 repeats), all three activation families.
demo: $(VENV)/.installed
	$(VENV)/bin/bayesstrf simulate --out results/demo.npz --neurons 2 --freqs 12 --lags 8 \
	  --time 8000 --trials 4 --segments 4 --drive-sd 0.3 --seed 0 --force
	$(VENV)/bin/bayesstrf compare results/demo.npz --out results --lags 8 --chains 4 \
	  --warmup 500 --draws 1000 --seed 0 --force

# The notebooks run in quick mode (tiny sizes, short chains): a smoke test of each tutorial.
# Compiling NUTS dominates, about 45 s of CPU per fit, 7 fits in all; the cell timeout is
# per cell.
# Headless Chromium for the report's screenshot test: installed where apt-get runs as root
# (about 25 s), otherwise that one test is skipped with its reason.
test: $(VENV)/.installed
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	  >/dev/null; } || echo "no Chromium: the report's screenshot test will be skipped" >&2
	$(PY) -m ruff check bayesstrf tests notebooks
	$(PY) -m mypy
	$(PY) -m pytest -q -m "not slow"
	BAYESSTRF_QUICK=1 $(PY) -m pytest -q -p no:cacheprovider --nbmake --nbmake-timeout=1800 notebooks

test-all: $(VENV)/.installed
	$(PY) -m pytest -q

# Live check of bayesstrf.model.interop against deepSTRF itself (issue 8), in its own venv: deepSTRF
# needs torch, whose PyPI wheel pulls the CUDA libraries (several GB). Not part of `make test`.
DS_VENV := .venv-deepstrf
$(DS_VENV)/.installed: pyproject.toml
	@py=$$($(FIND_PYTHON)); \
	if [ -z "$$py" ]; then echo "bayesstrf needs Python >= 3.12: install python3.12 (or set PYTHON=/path/to/python3.12)" >&2; exit 1; fi; \
	[ -x $(DS_VENV)/bin/python ] || "$$py" -m venv $(DS_VENV)
	$(DS_VENV)/bin/python -m pip install -q --upgrade pip
	$(DS_VENV)/bin/python -m pip install -q -e ".[dev,deepstrf]"
	@touch $@

test-deepstrf: $(DS_VENV)/.installed
	$(DS_VENV)/bin/python -c "import torch, deepSTRF; print('deepSTRF', deepSTRF.__version__, 'torch', torch.__version__)"
	$(DS_VENV)/bin/python -m pytest -q -rs tests/test_interop.py -k "deepstrf or safetensors"

# Performance benchmark (issue 4): bayesstrf vs plain NumPyro (and Stan when pystan imports;
# `pip install -e .[bench]`) at the default sizes; writes docs/benchmarks.md and .json.
bench: $(VENV)/.installed
	$(PY) -m benchmarks.performance

# Documentation site (issue 8), built offline with warnings as errors:
# docs/_build/html/index.html. Not part of `make test`.
docs: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[docs]"
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) results .pytest_cache
