"""One record per run stepped through in JupyterLab: real kernels (JPY_SESSION_NAME set, as jupyter_server sets
it), the runbook's own cells sent one by one, a real database; each run leaves its own sidecar."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import time
from pathlib import Path
from typing import Iterator

import nbformat
from jupyter_client import KernelManager

from conftest import ROOT
from lab_kernel import config_file, lock_holder

RUNBOOKS = ROOT / "runbooks"
DEADLINE_S = 60


class Kernel:
    """A kernel as JupyterLab starts it for a notebook; `cell(n)` sends the runbook's n-th code cell."""

    def __init__(self, km: KernelManager, runbook: str):
        self.km = km
        self.kc = km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=DEADLINE_S)
        nb = nbformat.read(RUNBOOKS / f"{runbook}.ipynb", as_version=4)
        self.code = [c.source for c in nb.cells if c.cell_type == "code"]
        self.template = self.code[0]

    def params(self, **values) -> dict:
        """The parameters cell with some lines changed, as a person edits it, then run."""
        lines = self.template.splitlines()
        for name, value in values.items():
            at = next(i for i, line in enumerate(lines) if line.startswith(f"{name}:"))
            lines[at] = f"{name} = {value!r}"
        return self.run("\n".join(lines))

    def cell(self, n: int) -> dict:
        return self.run(self.code[n])

    def run_all(self, **params) -> None:
        assert self.params(**params)["status"] == "ok"
        for n in range(1, len(self.code)):
            reply = self.cell(n)
            assert reply["status"] == "ok", (n, reply.get("evalue"), self.code[n][:80])

    def run(self, code: str) -> dict:
        """The execute_reply's content, plus `stdout`: what the cell printed."""
        out: list[str] = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])

        reply = self.kc.execute_interactive(code, timeout=180, output_hook=hook)["content"]
        return {**reply, "stdout": "".join(out)}

    def value(self, expression: str):
        reply = self.run(f"import json as _j; print(_j.dumps({expression}, default=str))")
        assert reply["status"] == "ok", reply.get("evalue")
        return json.loads(reply["stdout"])

    def exited(self) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while self.km.is_alive():
            assert time.monotonic() < deadline, "the kernel did not exit"
            time.sleep(0.05)


@contextlib.contextmanager
def lab_kernel(runbook: str, config: Path) -> Iterator[Kernel]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPSBOOK_RUN_RECORD", "OPSBOOK_REPORT_STEM")}
    env.update(JPY_SESSION_NAME=str(RUNBOOKS / f"{runbook}.ipynb"), OPSBOOK_CONFIG=str(config))
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(RUNBOOKS))
    kernel = None
    try:
        kernel = Kernel(km, runbook)
        yield kernel
    finally:
        if kernel is not None:
            kernel.kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=False)
        else:
            km.cleanup_resources()


def after_second(iso: str) -> str:
    """Wait (on the clock, with a deadline) until the UTC second is past `iso`; return the new second."""
    deadline = time.monotonic() + 5
    while (now := dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")) <= iso:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return now


def sidecars(tmp_path: Path) -> list[dict]:
    """Every sidecar in the reports folder, oldest first (in one second: name, name-2, name-3...)."""
    def order(path: Path) -> tuple[str, int]:
        n = path.stem.rpartition("Z-")[2] if "Z-" in path.stem else "1"
        return json.loads(path.read_text())["started_at"], int(n)

    return [json.loads(p.read_text()) for p in sorted((tmp_path / "reports").glob("*/*--*Z*.json"), key=order)]


def own_findings(k: Kernel) -> list[dict]:
    return k.value("[f.to_dict() for f in rb.findings]")


def key(f: dict) -> tuple:
    return f["check"], f["severity"], f["title"]


# ------------------------------------------------------------------------------------------------ the tests
def test_two_run_alls_in_one_kernel_leave_two_records_each_with_its_own_findings(db, tmp_path):
    with lab_kernel("incident-triage", config_file(tmp_path, db)) as k:
        t0 = time.monotonic()
        k.run_all(target="test")
        wall1 = time.monotonic() - t0
        first = own_findings(k)
        written_at_last_cell = len(sidecars(tmp_path))

        k.run_all(target="test", window_minutes=30, thresholds={"activity.long_running": {"warning": 60}},
                  terminate_pids=[424242], confirm=False)
        second = own_findings(k)
    one, two = sidecars(tmp_path)
    assert sorted(map(key, one["findings"])) == sorted(map(key, first))
    assert sorted(map(key, two["findings"])) == sorted(map(key, second))
    assert [f for f in two["findings"] if f["check"] == "remediation.backends"] == \
        [f for f in second if f["check"] == "remediation.backends"]  # the dry run, once, in the run that made it
    assert not [f for f in one["findings"] if "424242" in f["title"]]
    assert one["status"] == two["status"] == "ok" and one["error"] is None and one["interactive"] is True
    assert one["parameters"] == {"target": "test", "thresholds": {}, "freshness": {}, "top_statements": 20,
                                 "window_minutes": 60, "terminate_pids": [], "cancel_pids": [], "confirm": False,
                                 "statement_timeout_ms": 10000}
    assert two["parameters"]["window_minutes"] == 30 and two["parameters"]["terminate_pids"] == [424242]
    assert two["parameters"]["thresholds"] == {"activity.long_running": {"warning": 60}}
    assert 0 < one["duration_s"] <= wall1  # first cell to last cell, not the kernel's lifetime
    assert one["started_at"] <= two["started_at"]
    assert one["server_version_num"] and one["metrics"]
    assert written_at_last_cell == 1  # when its last cell ran, not at kernel exit


def test_a_cell_that_raises_makes_the_run_failed_with_its_error(db, tmp_path):
    with lab_kernel("incident-triage", config_file(tmp_path, db)) as k:
        k.params(target="test")
        assert k.cell(1)["status"] == "ok"
        reply = k.run("rb.section('no.such_check_id_either'); raise RuntimeError('the disk is full')")
        assert reply["status"] == "error"
        (record,) = sidecars(tmp_path)  # Run All stops at the failing cell: the record is there now
    assert record["status"] == "failed"
    assert record["error"].startswith("RuntimeError: the disk is full (code cell")
    assert {f["check"] for f in record["findings"]} >= {"connectivity.unreachable", "locks.blocking"}
    from opsbook.report.index import write_index

    page = write_index(tmp_path / "reports").read_text()
    assert "the disk is full" in page and "stepped through in JupyterLab" in page


def test_an_interrupt_mid_run_leaves_a_record_marked_interrupted(db, tmp_path):
    with lab_kernel("incident-triage", config_file(tmp_path, db)) as k:
        k.params(target="test")
        assert k.cell(1)["status"] == "ok"
        msg_id = k.kc.execute("import time\nprint('waiting', flush=True)\ntime.sleep(600)")
        deadline = time.monotonic() + DEADLINE_S
        while True:  # the cell is running once it has printed
            msg = k.kc.get_iopub_msg(timeout=DEADLINE_S)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                break
            assert time.monotonic() < deadline
        k.km.interrupt_kernel()
        while (reply := k.kc.get_shell_msg(timeout=DEADLINE_S))["parent_header"].get("msg_id") != msg_id:
            pass
        assert reply["content"]["status"] == "error"
        (record,) = sidecars(tmp_path)
        assert record["status"] == "interrupted" and "KeyboardInterrupt" in record["error"]
        assert "locks.blocking" in {f["check"] for f in record["findings"]}


def test_the_first_cell_run_again_mid_run_starts_a_new_run_and_marks_the_first_incomplete(db, tmp_path):
    with lab_kernel("incident-triage", config_file(tmp_path, db)) as k:
        k.params(target="test")
        for n in (1, 2, 3):
            assert k.cell(n)["status"] == "ok"
        first = own_findings(k)
        k.run_all(target="test")
        (one,) = [s for s in sidecars(tmp_path) if s["status"] != "ok"]
        assert one["status"] == "incomplete" and "new run started" in one["error"]
        assert sorted(map(key, one["findings"])) == sorted(map(key, first))
        assert len(sidecars(tmp_path)) == 2


def test_a_kernel_shut_down_mid_run_leaves_a_record_marked_so(db, tmp_path):
    with lab_kernel("incident-triage", config_file(tmp_path, db)) as k:
        k.params(target="test")
        for n in (1, 2, 3):
            assert k.cell(n)["status"] == "ok"
        assert sidecars(tmp_path) == []  # not finished: nothing yet
        k.kc.stop_channels()
        k.km.shutdown_kernel(now=False)  # what Jupyter does to its kernels when it stops
        (record,) = sidecars(tmp_path)
    assert record["status"] == "kernel stopped" and "shut down" in record["error"]
    assert "locks.blocking" in {f["check"] for f in record["findings"]}


def test_a_kernel_sent_sigterm_mid_run_leaves_a_record_marked_so(db, tmp_path):
    with lab_kernel("incident-triage", config_file(tmp_path, db)) as k:
        k.params(target="test")
        assert k.cell(1)["status"] == "ok"
        k.km.signal_kernel(signal.SIGTERM)
        k.exited()
        (record,) = sidecars(tmp_path)
    assert record["status"] == "kernel stopped" and "SIGTERM" in record["error"]


def test_a_termination_is_recorded_once_in_the_run_that_made_it(db, tmp_path):
    with lab_kernel("incident-triage", config_file(tmp_path, db)) as k:
        with lock_holder(db) as pid:
            k.run_all(target="test", terminate_pids=[pid], confirm=False)  # first, what it would do
            before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
            k.run_all(target="test", terminate_pids=[pid], confirm=True)  # then a second Run All that does it
    one, two = sidecars(tmp_path)
    title = f"terminate pid {pid}: signal sent: terminated"
    assert [f["title"] for f in one["findings"] if f["check"] == "remediation.backends"] == [
        f"terminate pid {pid}: not run: confirm is False, nothing was changed"]
    assert [f["title"] for f in two["findings"] if f["check"] == "remediation.backends"] == [title]
    (entry,) = [r for r in two["remediation"] if r["title"] == title]
    assert entry["title"] == title and entry["at"] >= two["started_at"] >= before
    assert one["metrics"]["backends_terminated"] == 0 and two["metrics"]["backends_terminated"] == 1


def test_remediation_alone_after_the_last_cell_is_recorded_once_at_the_time_it_happened(db, tmp_path):
    with lab_kernel("incident-triage", config_file(tmp_path, db)) as k:
        k.run_all(target="test")
        with lock_holder(db) as pid:
            # later, the natural way: the pid and confirm in the parameters cell, then only the Remediation cell
            before = after_second(sidecars(tmp_path)[0]["started_at"])
            assert k.params(target="test", terminate_pids=[pid], confirm=True)["status"] == "ok"
            remediation = next(n for n, src in enumerate(k.code) if "remediate.apply(" in src)
            assert k.cell(remediation)["status"] == "ok"
    (record,) = sidecars(tmp_path)
    done = [f for f in record["findings"] if f["check"] == "remediation.backends" and f"pid {pid}" in f["title"]]
    assert len(done) == 1 and "signal sent" in done[0]["title"]
    (entry,) = [r for r in record["remediation"] if f"pid {pid}" in r["title"]]
    assert entry["at"] >= before > record["started_at"]  # when it was done, not when the run started
    assert record["parameters"]["confirm"] is True and record["parameters"]["terminate_pids"] == [pid]
    assert record["metrics"]["backends_terminated"] == 1


def test_a_remediation_recorded_outside_a_cell_after_the_last_appears_once(db, tmp_path):
    """A button's click reaches the kernel as a comm message, not a cell: what it records joins the run's
    sidecar, once."""
    with lab_kernel("incident-triage", config_file(tmp_path, db)) as k:
        k.run_all(target="test")
        reply = k.run("import ipywidgets, opsbook\n"
                      "from opsbook.report import record as runrecord\n"
                      "from opsbook.core.findings import Finding, Severity\n"
                      "def clicked(_):\n"
                      "    runrecord.record_findings([Finding('remediation.backends', Severity.INFO,\n"
                      "                                       'terminate pid 99: clicked')])\n"
                      "    opsbook.record('backends_terminated', 1)\n"
                      "b = ipywidgets.Button(description='terminate')\n"
                      "b.on_click(clicked)\n"
                      "print(b.model_id)")
        assert reply["status"] == "ok", reply.get("evalue")
        button = reply["stdout"].strip()
        msg = k.kc.session.msg("comm_msg", {"comm_id": button, "data": {"method": "custom",
                                                                        "content": {"event": "click"}}})
        k.kc.shell_channel.send(msg)
        deadline = time.monotonic() + DEADLINE_S
        while not (records := sidecars(tmp_path)) or records[0]["metrics"].get("backends_terminated") != 1:
            assert time.monotonic() < deadline, "the click never reached the run's sidecar"
            time.sleep(0.05)
        (record,) = records
        assert [f["title"] for f in record["findings"] if "clicked" in f["title"]] == ["terminate pid 99: clicked"]
        assert [r["title"] for r in record["remediation"] if "clicked" in r["title"]] == ["terminate pid 99: clicked"]
        assert record["status"] == "ok"


def test_the_index_keeps_the_newest_html_report_with_the_lab_run_beside_it(db, tmp_path):
    from opsbook.config.file import load
    from opsbook.report.index import write_index
    from opsbook.run.runner import run_runbook

    config = load(config_file(tmp_path, db))
    report = run_runbook("incident-triage", "test", config=config)
    after_second(report.sidecar["started_at"])  # the Lab run below is the newer one, by the clock
    with lab_kernel("incident-triage", config_file(tmp_path, db)) as k:
        k.run_all(target="test")
    page = write_index(tmp_path / "reports").read_text()
    newest = page.split("<h2>Newest report of each runbook, per target</h2>", 1)[1].split("</table>", 1)[0]
    html = report.html_path.relative_to(tmp_path / "reports").as_posix()
    assert f'href="{html}"' in newest  # the HTML report stays the newest report
    lab = [s for s in sidecars(tmp_path) if s.get("interactive")]
    assert len(lab) == 1 and lab[0]["started_at"] > report.sidecar["started_at"]
    assert newest.count("<tr data-runbook") == 1  # one row per runbook and target, the Lab run in it
    assert "stepped through in JupyterLab" in newest
    assert any(f'href="{p.relative_to(tmp_path / "reports").as_posix()}"' in newest
               for p in (tmp_path / "reports").glob("*/*--*Z*.json") if json.loads(p.read_text()).get("interactive"))


def test_a_runbook_only_stepped_through_in_lab_has_its_row_with_no_report_yet(tmp_path):
    from opsbook.report.index import write_index

    day = tmp_path / "2026-12-01"
    day.mkdir()
    for stem, extra in (("capacity-planning--prod--010000Z", {}),
                        ("capacity-planning--prod--020000Z", {"interactive": True, "status": "kernel stopped"}),
                        ("incident-triage--prod--030000Z", {"interactive": True})):
        (day / f"{stem}.json").write_text(json.dumps({"runbook": stem.split("--")[0], "target": "prod",
                                                      "status": "ok", "started_at": f"2026-12-01T0{stem[-6]}:00:00Z",
                                                      "findings": [], **extra}))
    page = write_index(tmp_path).read_text()
    newest = page.split("<h2>Newest report of each runbook, per target</h2>", 1)[1].split("</table>", 1)[0]
    capacity, triage = newest.split("<tbody>", 1)[1].split("</tr>")[:2]
    assert 'href="2026-12-01/capacity-planning--prod--010000Z.html"' in capacity  # the report, not the Lab run
    assert 'href="2026-12-01/capacity-planning--prod--020000Z.json"' in capacity and "kernel stopped" in capacity
    assert "no report yet" in triage and 'href="2026-12-01/incident-triage--prod--030000Z.json"' in triage
