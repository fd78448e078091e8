"""A Runbook made in a kernel of a JupyterLab session (no runner) that never reaches its last cell leaves a sidecar
at exit, marked so; plain Python and the runner leave none of their own."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap


SCRIPT = textwrap.dedent("""
    from opsbook.config.file import from_dict
    from opsbook.run.context import Runbook
    config = from_dict({"targets": {"test": {"dsn": %r}}, "reports": {"dir": %r}})
    rb = Runbook("incident-triage", "test", config=config, params={"window_minutes": 5})
    rb.connect()
    rb.run(["connections.saturation"])
    rb.record("connections_used", 3)
""")


def run_kernel_like(db, tmp_path, **env):
    code = SCRIPT % (db.conninfo, str(tmp_path / "reports"))
    full = {k: v for k, v in os.environ.items() if k not in ("JPY_SESSION_NAME", "OPSBOOK_RUN_RECORD")}
    out = subprocess.run([sys.executable, "-c", code], env={**full, **env}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return sorted((tmp_path / "reports").glob("*/*--*.json"))  # sidecars, not the index cache


def test_lab_kernel_writes_its_sidecar_and_the_index_at_exit(db, tmp_path):
    paths = run_kernel_like(db, tmp_path, JPY_SESSION_NAME="/work/runbooks/incident-triage.ipynb")
    assert len(paths) == 1, paths
    (path,) = paths
    sidecar = json.loads(path.read_text())
    assert sidecar["interactive"] is True and sidecar["runbook"] == "incident-triage"
    assert sidecar["target"] == "test" and sidecar["parameters"] == {"target": "test", "window_minutes": 5}
    assert sidecar["status"] == "kernel stopped" and "before the run's last cell" in sidecar["error"]
    assert sidecar["metrics"]["connections_used"] == 3
    assert {f["check"] for f in sidecar["findings"]} >= {"connectivity.unreachable", "connections.saturation"}
    assert sidecar["notebook"] == "/work/runbooks/incident-triage.ipynb"
    assert (tmp_path / "reports" / "index.html").exists()


def test_plain_python_and_the_runner_leave_nothing_extra(db, tmp_path):
    assert run_kernel_like(db, tmp_path) == []
    record = tmp_path / "record.jsonl"
    assert run_kernel_like(db, tmp_path, JPY_SESSION_NAME="x.ipynb", OPSBOOK_RUN_RECORD=str(record)) == []
    assert record.exists()  # the runner's own record file got the findings instead


def test_a_file_a_lab_run_writes_goes_beside_its_sidecar_never_into_the_notebooks_folder(db, tmp_path):
    """The post-mortem's document and table-recovery's rows, written from a notebook opened in runbooks/: in the
    reports folder, named after the run."""
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    code = (SCRIPT % (db.conninfo, str(tmp_path / "reports")) +
            "from opsbook.report import record\nprint(record.artifact_path('.md'))\n")
    full = {k: v for k, v in os.environ.items() if k not in ("JPY_SESSION_NAME", "OPSBOOK_RUN_RECORD",
                                                              "OPSBOOK_REPORT_STEM")}
    out = subprocess.run([sys.executable, "-c", code], cwd=runbooks, capture_output=True, text=True, timeout=120,
                         env={**full, "JPY_SESSION_NAME": str(runbooks / "incident-triage.ipynb")})
    assert out.returncode == 0, out.stderr
    written = out.stdout.strip().splitlines()[-1]
    assert written.startswith(str(tmp_path / "reports")) and "incident-triage--test--" in written, written
    assert written.endswith("Z.md") and not list(runbooks.iterdir())
