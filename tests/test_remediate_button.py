"""Remediation by a button in JupyterLab: the incident-triage runbook's own cells in a real kernel, a real blocker on a
real server, the panel's buttons clicked in the kernel as Lab's comm messages would (`button.click()`)."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from pathlib import Path

import nbformat
import psycopg
import pytest
from nbclient import NotebookClient

from faults import Faults, alive, long_running, make_tables, pid
from lab_kernel import RUNBOOKS, LabKernel, config_file, errors, lab_kernel, text

THRESHOLDS = {"locks.blocking": {"min_wait_s": 0}}  # the waiter counts at once, not after deadlock_timeout
NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")
DEADLINE_S = 30


def blocker_and_waiter(f: Faults) -> tuple[int, int]:
    """`fault-report_job` holds a row lock, idle in transaction; `fault-waiter` waits for it."""
    make_tables(f.conninfo, "public.lockme")
    blocker = f.session("report_job", autocommit=False)
    blocker.execute("UPDATE public.lockme SET v = v + 1 WHERE id = 1")
    waiter = f.session("waiter")
    f.in_thread(waiter, "UPDATE public.lockme SET v = v + 1 WHERE id = 1")
    f.wait_lock(pid(waiter))
    return pid(blocker), pid(waiter)


def run_all(lab: LabKernel) -> None:
    lab.set_params(target="test", thresholds=THRESHOLDS)
    for i in lab.code[1:]:
        assert not errors(lab.run(i)), (i, lab.nb.cells[i].source)


def probe(lab: LabKernel, code: str):
    """Run `code` in the kernel; what it prints last, as JSON."""
    out = lab.source("import json\n" + code)
    assert not errors(out), errors(out)
    return json.loads(text(out).strip().splitlines()[-1])


def remediation_cell(lab: LabKernel) -> list[dict]:
    out = lab.run(lab.index_of("remediate.apply("))
    assert not errors(out), errors(out)
    return out


def remediations(lab: LabKernel) -> list[dict]:
    """The remediation.backends entries of the kernel's run record (what its sidecar is made from)."""
    return probe(lab, "import json, os\nfrom opsbook.report import record as r\n"
                      "print(json.dumps([f for f in r.read(os.environ[r.ENV])['findings'] "
                      "if f['check'] == 'remediation.backends']))")


def widget_shown(outputs: list[dict]) -> bool:
    return any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


def gone(f: Faults, backend: int) -> None:
    f.wait_for("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", (backend,))


def test_the_button_ends_the_blocker_after_the_last_cell_closed_the_session(db, tmp_path, monkeypatch):
    with Faults(db.conninfo) as f, lab_kernel("incident-triage", config_file(tmp_path, db), monkeypatch) as lab:
        blocker, waiter = blocker_and_waiter(f)
        run_all(lab)  # the last cell calls rb.close()
        out = remediation_cell(lab)  # then only the Remediation cell, again: no closed connection
        assert widget_shown(out)
        user = db.execute("SELECT current_user")[0][0]
        shown = probe(lab, f"b = panel.buttons[{blocker}]\n"
                           "print(json.dumps([b.description, b.tooltip, sorted(panel.buttons)]))")
        assert shown[0].startswith(f"Terminate pid {blocker} (app fault-report_job, user {user}, since ")
        assert shown[0].endswith("Z)") and shown[1] == f"SELECT pg_terminate_backend({blocker});"
        assert shown[2] == [blocker]  # the waiter is the blocker's doing: no button of its own

        asked = probe(lab, f"panel.buttons[{blocker}].click()\n"
                           "print(json.dumps([panel.question.value, panel.yes.description, panel.ask.layout.display]))")
        assert f"Terminate pid {blocker} (app fault-report_job, user {user}, since " in asked[0]
        assert asked[1:] == ["Yes, terminate", "flex"]
        assert alive(db.conninfo, [blocker]) == {blocker}  # the first click only asks

        before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        result = probe(lab, f"panel.yes.click()\nprint(json.dumps(panel.results[{blocker}].value))")
        after = dt.datetime.now(dt.timezone.utc)
        assert "signal sent: terminated at " in result
        gone(f, blocker)
        f.wait_for("SELECT state = 'idle' FROM pg_stat_activity WHERE pid = %s", (waiter,))  # it got its row

        # clicked again (a queued click, a double click on Yes): nothing more is done or recorded
        probe(lab, f"panel.buttons[{blocker}].click(); panel.yes.click(); print(1)")
        (entry,) = remediations(lab)
        assert entry["objects"] == [f"pid {blocker}"] and entry["severity"] == "info" and entry["value"] is True
        at = dt.datetime.strptime(entry["title"].rsplit(" at ", 1)[1], "%Y-%m-%dT%H:%M:%SZ")
        assert before <= at.replace(tzinfo=dt.timezone.utc) <= after
        assert entry["title"].startswith(f"terminate pid {blocker}: signal sent: terminated at ")
        metrics = probe(lab, "import json, os\nfrom opsbook.report import record as r\n"
                             "print(json.dumps(r.read(os.environ[r.ENV])['metrics']))")
        assert metrics["backends_terminated"] == 1


def test_no_does_nothing(db, tmp_path, monkeypatch):
    with Faults(db.conninfo) as f, lab_kernel("incident-triage", config_file(tmp_path, db), monkeypatch) as lab:
        blocker, waiter = blocker_and_waiter(f)
        run_all(lab)
        state = probe(lab, f"panel.buttons[{blocker}].click(); panel.no.click(); panel.yes.click()\n"
                           f"print(json.dumps([panel.results[{blocker}].value, panel.ask.layout.display, "
                           f"panel.buttons[{blocker}].disabled]))")
        assert "Not done: nothing was changed." in state[0] and state[1:] == ["none", False]
        assert alive(db.conninfo, [blocker, waiter]) == {blocker, waiter}
        assert db.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (waiter,)) == [("Lock",)]
        assert remediations(lab) == []


def test_a_runaway_statement_gets_a_cancel_button_and_its_session_stays(db, tmp_path, monkeypatch):
    with Faults(db.conninfo) as f, lab_kernel("incident-triage", config_file(tmp_path, db), monkeypatch) as lab:
        sleeper = long_running(f)
        f.wait_for("SELECT now() - query_start > interval '1 second' FROM pg_stat_activity WHERE pid = %s",
                   (sleeper,))
        lab.set_params(target="test", thresholds={"activity.long_running": {"warning": 1, "critical": 600}})
        for i in lab.code[1:]:
            assert not errors(lab.run(i)), (i, lab.nb.cells[i].source)
        asked = probe(lab, f"panel.buttons[{sleeper}].click()\n"
                           "print(json.dumps([panel.question.value, panel.yes.description]))")
        assert f"Cancel the statement of pid {sleeper} (app fault-sleeper, user " in asked[0]
        assert asked[1] == "Yes, cancel"
        result = probe(lab, f"panel.yes.click()\nprint(json.dumps(panel.results[{sleeper}].value))")
        assert "signal sent: statement cancelled at " in result
        f.wait_for("SELECT state = 'idle' FROM pg_stat_activity WHERE pid = %s", (sleeper,))
        assert isinstance(f.errors.get(sleeper), psycopg.errors.QueryCanceled)
        (entry,) = remediations(lab)
        assert entry["title"].startswith(f"cancel pid {sleeper}: signal sent: statement cancelled at ")


def reuse(conninfo: str, wanted: int) -> psycopg.Connection:
    """A new backend with the pid `wanted` (free again): the kernel hands out ns_last_pid + 1 next, so set it and
    connect, until no other process on the machine took that pid first."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        NS_LAST_PID.write_text(str(wanted - 1))
        conn = psycopg.connect(conninfo, autocommit=True, application_name="fault-newcomer")
        if conn.info.backend_pid == wanted:
            return conn
        conn.close()
    raise TimeoutError(f"pid {wanted} was not handed to a new backend within {DEADLINE_S} s")


@pytest.mark.skipif(os.geteuid() != 0 or not os.access(NS_LAST_PID, os.W_OK),
                    reason="choosing the next pid (/proc/sys/kernel/ns_last_pid) takes root")
def test_a_pid_reused_by_another_backend_between_plan_and_click_is_refused(db, tmp_path, monkeypatch):
    with Faults(db.conninfo) as f, lab_kernel("incident-triage", config_file(tmp_path, db), monkeypatch) as lab:
        blocker, _ = blocker_and_waiter(f)
        run_all(lab)
        probe(lab, f"panel.buttons[{blocker}].click(); print(1)")  # asked, not yet confirmed
        with psycopg.connect(db.conninfo, autocommit=True) as admin:  # the blocker ends by itself meanwhile
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (blocker,))
        gone(f, blocker)
        newcomer = reuse(db.conninfo, blocker)
        try:
            result = probe(lab, f"panel.yes.click()\nprint(json.dumps(panel.results[{blocker}].value))")
            assert f"refused: pid {blocker} is now another backend" in result and "nothing was done" in result
            assert newcomer.execute("SELECT pg_backend_pid()").fetchone() == (blocker,)  # still there
            (entry,) = remediations(lab)
            assert entry["severity"] == "warning" and entry["value"] is False and "refused" in entry["title"]
        finally:
            newcomer.close()


def test_without_ipywidgets_a_one_line_hint_and_the_calls_as_text(db, tmp_path, monkeypatch):
    with Faults(db.conninfo) as f, lab_kernel("incident-triage", config_file(tmp_path, db), monkeypatch) as lab:
        blocker, _ = blocker_and_waiter(f)
        run_all(lab)
        lab.source("import sys; sys.modules['ipywidgets'] = None")  # what an environment without it meets
        out = remediation_cell(lab)
        assert not widget_shown(out) and "need ipywidgets in this kernel (pip install &#x27;opsbook[lab]&#x27;)" \
            in text(out)
        assert f"SELECT pg_terminate_backend({blocker});" in text(out) and "Traceback" not in text(out)
        assert alive(db.conninfo, [blocker]) == {blocker}


@contextlib.contextmanager
def runner_kernel(tmp_path: Path, db, monkeypatch):
    """A kernel as `opsbook run` starts one (its own record file, no Jupyter session): papermill, nbval."""
    monkeypatch.setenv("OPSBOOK_CONFIG", str(config_file(tmp_path, db)))
    monkeypatch.setenv("OPSBOOK_RUN_RECORD", str(tmp_path / "record.jsonl"))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    nb = nbformat.read(RUNBOOKS / "incident-triage.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=180, startup_timeout=180, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        yield LabKernel(client, nb)


def test_outside_lab_the_plan_is_text_and_nothing_runs_without_confirm(db, tmp_path, monkeypatch):
    with Faults(db.conninfo) as f, runner_kernel(tmp_path, db, monkeypatch) as kernel:
        blocker, _ = blocker_and_waiter(f)
        run_all(kernel)
        out = remediation_cell(kernel)
        assert not widget_shown(out) and "Proposed calls" in text(out)
        assert f"SELECT pg_terminate_backend({blocker});" in text(out) and "Traceback" not in text(out)
        assert alive(db.conninfo, [blocker]) == {blocker}
        from opsbook.report import record
        entries = [(x["severity"], x["title"]) for x in record.read(tmp_path / "record.jsonl")["findings"]
                   if x["check"] == "remediation.backends"]  # apply() as today, once per run of the cell
        assert entries == [("ok", "no backend was asked to be cancelled or terminated")] * 2
