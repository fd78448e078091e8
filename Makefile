# `make demo` and `make test` each bootstrap .venv from nothing, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.opsbook-installed

.PHONY: demo test lab bench docs clean-reports

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,lab,fleet]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/opsbook demo

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/opsbook lab

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean-reports:
	find reports -mindepth 1 ! -name README.md -exec rm -rf {} +

docs: $(STAMP)
	$(BIN)/python -m opsbook.docs
