# make test: lint and the test suite; make demo: the main example. Both create .venv.
# Installs show pip's progress; the exact versions come from constraints.txt.

# The first Python 3.11+ on PATH (override: make PYTHON=/path/to/python3.12 ...).
PYTHON_CANDIDATES := python3 python3.13 python3.12 python3.11
ifeq ($(origin PYTHON),undefined)
PYTHON := $(or $(firstword $(foreach p,$(PYTHON_CANDIDATES),$(shell $(p) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $(p)))),python3)
endif
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
INSTALL := $(PIP) install -c constraints.txt
export KERAS_BACKEND := jax
# CI has 2 cores: use both for pytest workers there.
PYTEST_WORKERS ?= $(if $(CI),2,auto)
# The quick benchmark; the harness's entry point is this one line.
BENCH := $(BIN)/python -m jaxloss bench --quick
DOCS_OUT := docs/_build/html

.PHONY: test test-all test-range demo docs lint verify bench accelerator-report clean

# A .venv made by an older Python (jaxloss needs 3.11+) or whose interpreter is gone is
# removed here, before make looks at it, so the targets below build a fresh one.
ifneq ($(wildcard $(VENV)),)
ifneq ($(shell { $(BIN)/python -c 'import sys, pip; print(int(sys.version_info >= (3, 11)))'; } 2>/dev/null),1)
$(info $(VENV) was made with an unusable Python ($(or $(shell { $(BIN)/python --version; } 2>/dev/null),no interpreter)): removing it and making a new one with $(PYTHON))
$(shell rm -rf $(VENV))
endif
endif

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "make: jaxloss needs Python 3.11 or newer, and '$(PYTHON)' is $$($(PYTHON) --version 2>&1)."; \
	  echo "      Run again with one, e.g. make PYTHON=python3.11 $(MAKECMDGOALS)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.test-installed: $(BIN)/python pyproject.toml constraints.txt
	$(INSTALL) -e ".[test,examples,docs]"
	touch $@

$(VENV)/.examples-installed: $(BIN)/python pyproject.toml constraints.txt
	$(INSTALL) -e ".[examples]"
	touch $@

$(VENV)/.docs-installed: $(BIN)/python pyproject.toml constraints.txt
	$(INSTALL) -e ".[docs]"
	touch $@

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# CI runs this: a seeded sample of the large grids (see tests/conftest.py).
# loadgroup: tests marked xdist_group share one worker (and its module fixture).
test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q

test-all: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q --run-slow

# The wheel, installed in fresh venvs, on the declared floor (Python 3.11) and on the
# newest releases (Python 3.12); see tools/test_range.py.
test-range:
	$(PYTHON) tools/test_range.py

demo: $(VENV)/.examples-installed
	$(BIN)/python examples/train_digits.py

# Warnings are errors; the link check looks at the built pages only (no network).
docs: $(VENV)/.docs-installed
	rm -rf $(DOCS_OUT)
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs $(DOCS_OUT)
	$(BIN)/python tools/check_links.py $(DOCS_OUT)
	@echo "open $(DOCS_OUT)/index.html"

verify: $(VENV)/.test-installed
	$(BIN)/python -m jaxloss verify

bench: $(VENV)/.test-installed
	$(BENCH)

# Gradients and speed on whatever device this machine has, in a fixed time (docs/accelerators/).
# Runs the checkout with the machine's own Python and jax, installing nothing:
#   make accelerator-report                          # every stage, at the device's sizes
#   make accelerator-report ARGS="--platform cpu"    # on CPU, at small sizes
accelerator-report:
	$(PYTHON) -m jaxloss report $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis docs/_build build dist
