# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_QUIET := --quiet --disable-pip-version-check
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# pip repeats a harmless warning per package about this machine's local indexes: hide it.
FILTER := { grep -v "^WARNING: Location" || true; }

.PHONY: demo test ui lint install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install $(PIP_QUIET) -e . 2>&1 | $(FILTER)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install $(PIP_QUIET) -e ".[test]" 2>&1 | $(FILTER)
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/prodtwin demo

ui: install
	$(BIN)/prodtwin ui

test: install-test
	$(BIN)/python -m pytest

lint: install-test
	$(BIN)/ruff check synth_assets orchestration tests benchmarks

clean:
	rm -rf $(VENV) .prodtwin .pytest_cache
