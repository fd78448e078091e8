"""In JupyterLab the parameters cell is checked as `opsbook run` checks `-p`: the same one line, no traceback, and
nothing built with the parameters of before answers a later cell."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lab_kernel import config_file, errors, lab_kernel, text, traceback_lines

# (parameter, value typed in the cell, the same value on the command line)
BAD = [("statement_timeout_ms", 0, "0"), ("statement_timeout_ms", 1, "1"), ("top_statements", -5, "-5"),
       ("top_statements", "twenty", "twenty"), ("terminate_pids", [0], "0"),
       ("freshness", {"public.t; drop": {"column": "x"}}, '{"public.t; drop": {"column": "x"}}')]


def cli_line(config, *args) -> str:
    out = subprocess.run([sys.executable, "-m", "opsbook.cli", "--config", str(config), "run", "incident-triage",
                          *args], capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


@pytest.fixture
def lab(db, tmp_path, monkeypatch):
    config = config_file(tmp_path, db)
    with lab_kernel("incident-triage", config, monkeypatch) as lab:
        lab.config = config
        yield lab


def setup_fails_with(lab, line: str) -> None:
    (error,) = errors(lab.run(lab.index_of("Runbook(")))
    assert traceback_lines(error) == [line]


def test_each_bad_value_stops_the_first_cell_with_the_clis_line(lab):
    for name, value, typed in BAD:
        lab.set_params(target="test", **{name: value})
        setup_fails_with(lab, cli_line(lab.config, "--target", "test", "-p", f"{name}={typed}"))
    lab.set_params(target="nope")
    setup_fails_with(lab, cli_line(lab.config, "--target", "nope"))


def test_a_bad_value_after_a_good_run_leaves_no_later_cell_running_on_the_old_one(lab):
    lab.set_params(target="test")
    for i in lab.code[1:]:
        assert not errors(lab.run(i))
    lab.set_params(target="test", top_statements=-5)
    (error,) = errors(lab.run(lab.index_of("Runbook(")))
    first = traceback_lines(error)
    assert len(first) == 1 and first[0].startswith("opsbook: error: parameter 'top_statements' must be in [1, 1000]")
    for i in lab.code[2:]:  # every later cell: the same one line, none shows the old run's results
        out = lab.run(i)
        assert not text(out), (lab.nb.cells[i].source, text(out)[:300])
        (error,) = errors(out)
        (line,) = traceback_lines(error)
        assert line.startswith(first[0]) and "fix the parameters cell" in line

    lab.set_params(target="test", top_statements=5)  # fixed: the runbook works again from its first cell
    for i in lab.code[1:]:
        assert not errors(lab.run(i))
