"""Schedules keep their promise when the target or the run does not: a target down at its slot is retried, reported
once and run again when it answers within the period; a run killed at its timeout still reaches the index and the
schedule log."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import tomli_w

from conftest import _server, free_port, make_database
from local_servers import http_recorder
from opsbook.config.file import from_dict
from opsbook.schedule.jobs import WAITING_TARGET, JobStore, job_runs
from opsbook.schedule.runs import run_due

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
OPSBOOK = Path(sys.executable).parent / "opsbook"
UTC = dt.timezone.utc
SLOT = dt.datetime(2027, 2, 1, 5, 0, tzinfo=UTC)  # 06:00 on February 1 in Berlin


def _notebook(folder: Path, name: str, code: str) -> None:
    nb = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}, "opsbook": {"purpose": f"Test runbook {name}."}})
    nb.cells = [nbformat.v4.new_code_cell('target: str = "demo"  # target name', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, folder / f"{name}.ipynb")


@pytest.fixture
def runbooks(tmp_path, monkeypatch):
    """The fixture runbooks, plus `sleepy` (sleeps; an interrupt stops it, so the runner still writes its report)
    and `stuck` (a kernel that ignores interrupts and SIGTERM: killed, it leaves no report at all)."""
    folder = tmp_path / "runbooks"
    shutil.copytree(FIXTURES, folder)
    _notebook(folder, "sleepy", "import time\ntime.sleep(600)")
    _notebook(folder, "stuck", "import signal, time\n"
                               "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})\n"
                               "time.sleep(600)")
    monkeypatch.setenv("OPSBOOK_RUNBOOKS", str(folder))
    return folder


def _raw(tmp_path, dsn: str, **schedule) -> dict:
    return {"targets": {"app": {"dsn": dsn}},
            "history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"},
            "reports": {"dir": str(tmp_path / "reports")},
            "notify": {"ops": {"kind": "webhook", "url_env": "OPSBOOK_TEST_HOOK", "format": "json",
                               "on": ["failed"]}},
            "schedules": [{"name": "monthly", "runbook": "connect", "targets": ["app"], "cron": "0 6 1 * *",
                           "timezone": "Europe/Berlin", "notify": ["ops"], **schedule}]}


def _rows(config) -> list[dict]:
    store = JobStore(config.history_url)
    try:
        return store.rows()
    finally:
        store.close()


def _sidecars(tmp_path) -> list[Path]:
    return sorted((tmp_path / "reports").glob("[0-9]*-[0-9]*-[0-9]*/*.json"))


def _list(tmp_path, raw: dict, env: dict) -> tuple[str, list[dict]]:
    """`opsbook schedule list` as a user runs it: (its text, its --json rows)."""
    cfg = tmp_path / "opsbook.toml"
    cfg.write_text(tomli_w.dumps(raw))
    text = subprocess.run([str(OPSBOOK), "--config", str(cfg), "schedule", "list"], capture_output=True, text=True,
                          env=env, timeout=120)
    rows = subprocess.run([str(OPSBOOK), "--config", str(cfg), "schedule", "list", "--json"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert text.returncode == 0 and rows.returncode == 0, text.stderr + rows.stderr
    return text.stdout, json.loads(rows.stdout)


# ------------------------------------------------------------------------------------------ a down target
def test_a_target_down_at_its_slot_is_retried_reported_once_and_run_again_when_back(runbooks, tmp_path,
                                                                                    tmp_path_factory, monkeypatch):
    server = _server(tmp_path_factory, "down")  # this test's own server: it stops and starts it
    try:
        d = make_database(server)
        raw = _raw(tmp_path, d.conninfo, max_attempts=2, retry_backoff_s=60)
        with http_recorder() as hook:
            monkeypatch.setenv("OPSBOOK_TEST_HOOK", hook.url)
            config = from_dict(raw)
            server.stop()  # pg_ctl stop: the target is down at its slot
            (first,) = run_due(config, now=SLOT)
            assert (first.status, first.attempt) == ("retrying", 1), first.line()
            assert first.error.startswith("cannot reach target app") and hook.posts == []
            assert run_due(config, now=SLOT + dt.timedelta(seconds=30)) == []  # its backoff has not passed
            (second,) = run_due(config, now=SLOT + dt.timedelta(seconds=120))  # backoff after the attempt
            assert (second.status, second.attempt) == ("failed", 2), second.line()
            assert "waiting for app to answer" in second.line() and "2027-03-01 06:00 Europe/Berlin" in second.line()
            assert len(hook.posts) == 1
            body = hook.posts[0]["body"]
            assert body["event"] == "failed" and body["target"] == "app" and "cannot reach target app" in body["error"]
            (row,) = _rows(config)
            assert row["status"] == WAITING_TARGET and row["attempt"] == 2
            text, (listed,) = _list(tmp_path, raw, {**os.environ, "OPSBOOK_RUNBOOKS": str(runbooks)})
            assert listed["waiting"] == "target" and listed["waiting_until"] == "2027-03-01T05:00:00Z"
            assert "waiting for app to answer: cannot reach target app" in text and "until 2027-03-01T05:00:00Z" in text
            # still down a few ticks later: probed, not run, nobody told again
            for minutes in (3, 4):
                assert run_due(config, now=SLOT + dt.timedelta(minutes=minutes)) == []
            assert len(hook.posts) == 1 and len(_sidecars(tmp_path)) == 2  # the two attempts' reports
            server.start()  # back within the month: the next tick runs the job once more
            (third,) = run_due(config, now=SLOT + dt.timedelta(minutes=5))
            assert (third.status, third.attempt) == ("ok", 3), third.line()
            assert "once more" in third.line() and third.error is None
            sidecar = json.loads(Path(third.report).read_text())
            assert sidecar["status"] == "ok" and sidecar["metrics"]["server_version_num"] >= 180000
            assert not [f for f in sidecar["findings"] if f["check"] == "connectivity.unreachable"
                        and f["severity"] == "critical"]
            assert run_due(config, now=SLOT + dt.timedelta(minutes=6)) == []  # once, not again
            (row,) = _rows(config)
            assert (row["status"], row["attempt"], row["report"]) == ("ok", 3, third.report)
        assert len(hook.posts) == 1  # one failure message in all
    finally:
        server.stop()


def test_a_silent_target_is_probed_once_per_tick_and_given_up_at_the_next_slot(runbooks, tmp_path, monkeypatch):
    """Two schedules wait for one target nobody listens for: one connection attempt per run-due, not one per job;
    at the next slot the wait ends (the job fails, nobody is told again) and that slot runs as usual."""
    raw = _raw(tmp_path, f"host=127.0.0.1 port={free_port()} dbname=x connect_timeout=1", notify=[])
    raw["schedules"].append({**raw["schedules"][0], "name": "second"})
    config = from_dict(raw)
    store = JobStore(config.history_url)
    try:
        with store.engine.begin() as conn:
            for name, target in (("monthly", "app"), ("second", "app"), ("second", "nowhere")):
                conn.execute(job_runs.insert().values(
                    schedule=name, target=target, slot=SLOT.timestamp(), attempt=3, status=WAITING_TARGET,
                    started_at=SLOT.timestamp(), finished_at=SLOT.timestamp(), error="cannot reach target app"))
    finally:
        store.close()
    import opsbook.database.session as session

    probes = []
    real = session.connect

    def counting(target, **kw):
        probes.append((target.name, kw.get("connect_timeout_s")))
        return real(target, **kw)

    monkeypatch.setattr(session, "connect", counting)
    said: list[str] = []
    assert run_due(config, now=SLOT + dt.timedelta(days=3), progress=said.append) == []
    assert probes == [("app", 1)]  # the target's own connect_timeout, once for both jobs
    assert said == ["second: ignored job row 3 (target 'nowhere'): 'nowhere' is not one of the schedule's targets "
                    "(app)"]  # a row written by someone else never makes opsbook connect anywhere
    ran = []
    monkeypatch.setattr("opsbook.fleet.task.run_target", lambda runbook, target, params, **kw: ran.append(target)
                        or {"exit_code": 0, "result": {"status": "ok", "sidecar": None, "findings": []}})
    next_slot = dt.datetime(2027, 3, 1, 5, 0, tzinfo=UTC)
    outcomes = run_due(config, now=next_slot)
    assert [(o.schedule, o.slot, o.status) for o in outcomes] == [("monthly", next_slot, "ok"),
                                                                  ("second", next_slot, "ok")]
    assert len(probes) == 1 and ran == ["app", "app"]  # no probe for a wait that is over: the new slots ran
    old = [r for r in _rows(config) if r["slot"] == SLOT.timestamp() and r["target"] == "app"]
    assert [r["status"] for r in old] == ["failed", "failed"]
    assert all("did not answer before the next slot (2027-03-01 06:00 Europe/Berlin)" in r["error"] for r in old)


# ------------------------------------------------------------------------------------------ runs without a report
def test_a_run_killed_at_its_timeout_reaches_the_index_and_the_schedule_log(runbooks, tmp_path):
    raw = _raw(tmp_path, "dbname=x", runbook="stuck", cron="* * * * *", timeout_s=2, max_attempts=1, notify=[])
    del raw["notify"]
    cfg = tmp_path / "opsbook.toml"
    cfg.write_text(tomli_w.dumps(raw))
    env = {**os.environ, "OPSBOOK_RUNBOOKS": str(runbooks)}
    out = subprocess.run([str(OPSBOOK), "--config", str(cfg), "schedule", "run-due"], capture_output=True,
                         text=True, env=env, timeout=240)
    assert out.returncode == 1, out.stderr  # a failed job
    (line,) = out.stdout.splitlines()  # the schedule log's line says where the record of the run is
    assert "monthly on app" in line and ": failed: timed out after 2 s (killed) -> " in line, line
    record = Path(line.rsplit(" -> ", 1)[1])
    sidecar = json.loads(record.read_text())
    assert {k: sidecar[k] for k in ("runbook", "target", "status", "error", "kind", "findings", "metrics")} == {
        "runbook": "stuck", "target": "app", "status": "failed", "error": "timed out after 2 s (killed)",
        "kind": "no_report", "findings": [], "metrics": {}}
    assert {"started_at", "duration_s", "server_version_num", "parameters"} <= sidecar.keys()
    assert record.with_suffix(".html").is_file() and not record.with_suffix(".ipynb").exists()
    stem = record.relative_to(tmp_path / "reports").with_suffix("").as_posix()
    index = (tmp_path / "reports" / "index.html").read_text()
    assert f'href="{stem}.html"' in index and f'href="{stem}.json"' in index and f"{stem}.ipynb" not in index
    assert "timed out after 2 s (killed)" in index
    text, (listed,) = _list(tmp_path, raw, env)
    assert listed["last_status"] == "failed" and listed["last_report"] == str(record)


def test_a_run_stopped_at_its_timeout_keeps_its_own_report(runbooks, tmp_path):
    """A kernel that obeys the interrupt: the run still writes its failed report (SIGTERM), and that is the one the
    job points to: one record of the run, never a second one beside it. (Should the kill come before the runner
    started, the record is the schedule's: either way exactly one.)"""
    config = from_dict({**_raw(tmp_path, "dbname=x", runbook="sleepy", cron="* * * * *", timeout_s=15,
                               max_attempts=1, notify=[]), "notify": {}})
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    (o,) = run_due(config, now=now)
    assert o.status == "failed" and o.error == "timed out after 15 s (killed)"
    (only,) = _sidecars(tmp_path)
    assert o.report == str(only)
    sidecar = json.loads(only.read_text())
    assert sidecar["status"] == "failed"
    assert "SIGTERM" in sidecar["error"] or sidecar.get("kind") == "no_report", sidecar
