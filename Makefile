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

# 1,400 px screenshots of the newest report of each runbook and of the index (runs the demo when there is none)
.PHONY: screenshots
screenshots: $(STAMP)
	test -f reports/index.html || $(BIN)/opsbook demo
	$(BIN)/python tests/report_browser.py reports reports/screenshots
