# The two commands a fresh machine needs: `make demo` (the main job) and `make test` (everything).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
IDP    := tests/idp

.PHONY: setup demo test lint typecheck pytest bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# compat: a plain path in a .pth file; the default editable finder costs ~14 ms of imports
	# (pathlib, importlib.util) at the start of every `vault` process.
	$(PY) -m pip install -q -e '.[dev]' --config-settings editable_mode=compat
	touch $@

$(IDP)/node_modules/.installed: $(IDP)/package-lock.json
	npm ci --prefix $(IDP) --no-audit --no-fund
	touch $@

setup: $(VENV)/.installed $(IDP)/node_modules/.installed

demo: setup
	$(PY) -m tests.demo

lint: setup
	$(VENV)/bin/ruff check vault tests bench

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	$(VENV)/bin/pytest -q -n 2

test: lint typecheck pytest

bench: setup
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) $(IDP)/node_modules .mypy_cache .ruff_cache .pytest_cache
