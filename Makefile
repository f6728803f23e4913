# make test: lint and the test suite; make demo: the main example. Both create .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
export KERAS_BACKEND := jax
# CI has 2 cores: use both for pytest workers there.
PYTEST_WORKERS ?= $(if $(CI),2,auto)

.PHONY: test test-all demo lint verify bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.test-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt -e ".[test,examples]" pytest-xdist
	touch $@

$(VENV)/.examples-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt -e ".[examples]"
	touch $@

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q

test-all: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q --run-slow

demo: $(VENV)/.examples-installed
	$(BIN)/python examples/train_digits.py

verify: $(VENV)/.test-installed
	$(BIN)/python -m jaxloss verify

bench: $(VENV)/.examples-installed
	$(BIN)/python -m jaxloss bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
