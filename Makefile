# The two commands a fresh machine needs: `make demo` (the main job) and `make test` (everything).
# Every Python package comes from the lock (requirements/*.txt, hashes required); `make lock`
# refreshes it. vault itself is installed into .venv as a user installs it: a built wheel.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
IDP    := tests/harness/idp
LOCK   := $(PY) -m uv pip compile --universal --python-version 3.11 --generate-hashes --quiet
SOURCES := $(shell find vault -name '*.py' -o -name py.typed -o -path 'vault/audit/templates/*' -type f)

.PHONY: setup install demo test test-fast lint typecheck imports pytest bench lock audit-deps \
	mutate clean golden man

$(VENV)/.locked: requirements/build.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --require-hashes -r requirements/build.txt
	$(PIP) install -q --require-hashes -r requirements/dev.txt
	touch $@

# The wheel, built with the locked setuptools (no build isolation, no download), then installed
# without touching its locked dependencies. Rebuilt whenever a file of the package changes.
$(VENV)/.installed: $(VENV)/.locked pyproject.toml $(SOURCES)
	rm -rf build dist
	$(PIP) wheel -q --no-deps --no-build-isolation --wheel-dir dist .
	$(PIP) install -q --no-deps --force-reinstall dist/vault-*.whl
	rm -rf build
	$(PIP) check
	touch $@

$(IDP)/node_modules/.installed: $(IDP)/package-lock.json
	npm ci --prefix $(IDP) --no-audit --no-fund
	touch $@

install: $(VENV)/.installed
setup: $(VENV)/.installed $(IDP)/node_modules/.installed

demo: setup
	$(PY) -m tests.demo

lint: setup
	$(VENV)/bin/ruff check vault tests bench

typecheck: setup
	$(VENV)/bin/mypy

imports: setup
	$(VENV)/bin/lint-imports

pytest: setup
	$(VENV)/bin/pytest -q -n 2

# The unit tests alone (in process, no executable, no provider), at most 10 hypothesis examples
# each and without the ones that wait out a real deadline (marked slow): under a minute on 2
# cores. `make test` runs all of them, each with its own count.
test-fast: setup
	VAULT_TEST_MAX_EXAMPLES=10 $(VENV)/bin/pytest -q -n 2 -m "not slow" tests/unit

test: lint typecheck imports pytest

bench: setup
	$(PY) -m bench.run

# Resolve every dependency again (newest allowed by pyproject.toml) and pin it with hashes.
lock: $(VENV)/.locked
	$(LOCK) requirements/build.in -o requirements/build.txt
	$(LOCK) pyproject.toml -o requirements/runtime.txt
	$(LOCK) pyproject.toml --extra dev -o requirements/dev.txt

# Known vulnerabilities in the locked dependencies (needs the vulnerability service).
audit-deps: $(VENV)/.locked
	$(VENV)/bin/pip-audit --strict --require-hashes --disable-pip -r requirements/dev.txt

mutate: setup
	$(PY) -m tests.mutation

# Regenerate tests/golden/help/ (every command's --help at 80 columns) after a deliberate change
# to the help; review the diff before committing it.
golden: install
	VAULT_GOLDEN_UPDATE=1 $(VENV)/bin/pytest -q -n 2 tests/integration/test_help_golden.py

# The man page, generated from the parser (vault.cli.manpage); read it with `man -l vault.1`.
man: vault.1
vault.1: $(VENV)/.installed
	$(PY) -m vault.cli.manpage > $@.tmp && mv $@.tmp $@

clean:
	rm -rf $(VENV) $(IDP)/node_modules .mypy_cache .ruff_cache .pytest_cache build dist mutants
