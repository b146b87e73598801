# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup run test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_SPEC)" || $(PIP) install -q "torch>=2.2"
	$(PIP) install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

# Until the suite runner lands, the main job summarises ML-100K and shows rendered profiles.
run: setup
	$(VENV)/bin/recrobust data info movielens-100k
	$(VENV)/bin/recrobust data show movielens-100k --user 1 --task preference

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/bench_bpr.py

clean:
	rm -rf $(VENV) .pytest_cache
