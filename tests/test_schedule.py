"""Schedules on a real target: due slots, exactly-once under concurrency, retries, failure notices, timers."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opsbook.config.file import from_dict
from opsbook.core.errors import ConfigError
from opsbook.schedule.jobs import JobStore
from opsbook.schedule.runs import run_due, run_now
from opsbook.schedule.spec import load_schedules
from opsbook.schedule.timers import config_id
from local_servers import http_recorder

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
OPSBOOK = Path(sys.executable).parent / "opsbook"
UTC = dt.timezone.utc


@pytest.fixture
def fixture_runbooks(monkeypatch):
    monkeypatch.setenv("OPSBOOK_RUNBOOKS", str(FIXTURES))


def _raw(tmp_path, dsn, **schedule):
    return {"targets": {"test": {"dsn": dsn}},
            "history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"},
            "reports": {"dir": str(tmp_path / "reports")},
            "schedules": [{"name": "minutely", "runbook": "connect", "targets": ["test"], "cron": "* * * * *",
                           **schedule}]}


def _reports(tmp_path) -> list[Path]:
    """The run sidecars: reports/YYYY-MM-DD/*.json (not the index's own cache under reports/.index/)."""
    return sorted((tmp_path / "reports").glob("[0-9]*-[0-9]*-[0-9]*/*.json"))


# ------------------------------------------------------------------------------------------ slots
def test_slots_follow_the_time_zone_and_catch_up_once(fixture_runbooks, tmp_path):
    config = from_dict({"schedules": [{"name": "monthly", "runbook": "connect", "targets": ["demo"],
                                       "cron": "0 6 1 * *", "timezone": "Europe/Berlin"}]})
    (s,) = load_schedules(config)
    now = dt.datetime(2026, 12, 1, 5, 30, tzinfo=UTC)  # 06:30 in Berlin: today's 06:00 slot has come
    assert s.latest_slot(now) == dt.datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    assert s.next_slot(now) == dt.datetime(2027, 1, 1, 5, 0, tzinfo=UTC)
    # after three months of downtime the newest slot is the only one due: caught up once, not three times
    assert s.latest_slot(dt.datetime(2027, 3, 15, tzinfo=UTC)) == dt.datetime(2027, 3, 1, 5, 0, tzinfo=UTC)
    exactly = dt.datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # at the slot itself, that slot is due
    assert s.latest_slot(exactly) == exactly


@pytest.mark.parametrize("change, message", [
    ({"cron": "every minute"}, "cron 'every minute' is not a valid 5-field cron expression"),
    ({"cron": "* * * * * *"}, "is not a valid 5-field cron expression"),
    ({"timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
    ({"runbook": "no-such-runbook"}, "unknown runbook 'no-such-runbook'"),
    ({"targets": ["prod"]}, "unknown target 'prod'"),
    ({"notify": ["team-slack"]}, "unknown notifier 'team-slack'"),
    ({"fail_on": "info"}, "fail_on must be one of warning, critical"),
    ({"cronn": "* * * * *"}, "unknown key 'cronn'"),
])
def test_bad_schedule_is_exit_2_naming_it(fixture_runbooks, tmp_path, change, message):
    raw = _raw(tmp_path, "host=/nonexistent dbname=x")
    raw["schedules"][0].update(change)
    with pytest.raises(ConfigError, match="schedule 'minutely'") as e:
        load_schedules(from_dict(raw))
    assert message in str(e.value) and e.value.exit_code == 2


def test_bad_schedule_on_the_command_line(fixture_runbooks, tmp_path):
    (tmp_path / "opsbook.toml").write_text('[[schedules]]\nname = "m"\nrunbook = "connect"\ntargets = ["demo"]\n'
                                           'cron = "61 * * * *"\n')
    out = subprocess.run([str(OPSBOOK), "--config", str(tmp_path / "opsbook.toml"), "schedule", "list"],
                         capture_output=True, text=True, env={**os.environ, "OPSBOOK_RUNBOOKS": str(FIXTURES)})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("opsbook: error: schedule 'm': cron '61 * * * *' is not a valid")


def test_targets_all_and_tags(fixture_runbooks):
    config = from_dict({"targets": {"a": {"dsn": "dbname=a", "tags": ["prod", "eu"]}, "b": {"dsn": "dbname=b"},
                                    "c": {"dsn": "dbname=c", "tags": ["prod"]}},
                        "schedules": [{"name": "s", "runbook": "connect", "targets": ["all"], "cron": "0 * * * *"},
                                      {"name": "t", "runbook": "connect", "targets": ["tag:prod"],
                                       "cron": "0 * * * *"}]})
    s_all, s_tag = load_schedules(config)
    assert s_all.resolve_targets(config) == ["a", "b", "c"]  # every configured target, not the built-in demo
    assert s_tag.resolve_targets(config) == ["a", "c"]


# ------------------------------------------------------------------------------------------ real runs
def test_run_due_runs_once_per_slot_on_every_target(fixture_runbooks, tmp_path, db):
    raw = _raw(tmp_path, db.conninfo, targets=["all"])
    raw["targets"]["second"] = {"dsn": db.conninfo}
    config = from_dict(raw)
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    first = run_due(config, now=now)  # both targets, side by side as a fleet
    assert sorted((o.target, o.status, o.attempt) for o in first) == [("second", "ok", 1), ("test", "ok", 1)]
    sidecar = json.loads(Path(first[0].report).read_text())
    assert sidecar["status"] == "ok" and sidecar["runbook"] == "connect"
    assert run_due(config, now=now + dt.timedelta(seconds=20)) == []  # same minute: nothing more
    assert len(_reports(tmp_path)) == 2
    store = JobStore(config.history_url)
    try:
        rows = store.rows()
    finally:
        store.close()
    assert sorted(r["target"] for r in rows) == ["second", "test"]
    assert all(r["status"] == "ok" and r["slot"] == now.timestamp() for r in rows)
    assert {r["report"] for r in rows} == {o.report for o in first}


def test_two_concurrent_invocations_make_one_report(fixture_runbooks, tmp_path, db):
    (tmp_path / "opsbook.toml").write_text(
        f"[targets.test]\ndsn = {json.dumps(db.conninfo)}\n[history]\nurl = \"sqlite:///{tmp_path}/history.sqlite\"\n"
        f"[reports]\ndir = \"{tmp_path}/reports\"\n"
        '[[schedules]]\nname = "minutely"\nrunbook = "connect"\ntargets = ["test"]\ncron = "* * * * *"\n')
    env = {**os.environ, "OPSBOOK_RUNBOOKS": str(FIXTURES), "OPSBOOK_CONFIG": str(tmp_path / "opsbook.toml")}
    procs = [subprocess.Popen([str(OPSBOOK), "schedule", "run-due"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    lines = [line for out, _ in outs for line in out.splitlines()]
    assert len(lines) == 1 and "minutely on test" in lines[0] and ": ok" in lines[0], outs
    assert len(_reports(tmp_path)) == 1


def test_failing_run_is_retried_then_reported_failed(fixture_runbooks, tmp_path, db, monkeypatch):
    raw = _raw(tmp_path, db.conninfo, runbook="failing", max_attempts=2, retry_backoff_s=0,
               notify=["ops"], parameters={"mode": "raise"})
    raw["notify"] = {"ops": {"kind": "webhook", "url_env": "OPSBOOK_TEST_HOOK", "format": "json",
                             "on": ["failed"]}}
    with http_recorder() as hook:
        monkeypatch.setenv("OPSBOOK_TEST_HOOK", hook.url)
        config = from_dict(raw)
        now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
        (first,) = run_due(config, now=now)
        assert (first.status, first.attempt) == ("retrying", 1) and hook.posts == []  # not yet: it will retry
        (second,) = run_due(config, now=now + dt.timedelta(seconds=30))
        assert (second.status, second.attempt) == ("failed", 2)
        assert run_due(config, now=now + dt.timedelta(seconds=59)) == []  # not retried again before its next slot
    assert len(hook.posts) == 1
    body = hook.posts[0]["body"]
    assert body["event"] == "failed" and body["attempt"] == 2
    assert body["error"].startswith("ZeroDivisionError: boom: the failing step (code cell")
    sidecar = json.loads(Path(second.report).read_text())
    assert sidecar["notifications"][0]["notifier"] == "ops" and sidecar["notifications"][0]["ok"] is True
    assert len(_reports(tmp_path)) == 2  # each attempt leaves its own failed report


def test_run_now_and_list(fixture_runbooks, tmp_path, db):
    config = from_dict(_raw(tmp_path, db.conninfo, cron="0 6 1 * *"))
    (o,) = run_now(config, "minutely")
    assert o.status == "ok"
    (tmp_path / "opsbook.toml").write_text(
        f"[targets.test]\ndsn = {json.dumps(db.conninfo)}\n[history]\nurl = \"sqlite:///{tmp_path}/history.sqlite\"\n"
        '[[schedules]]\nname = "minutely"\nrunbook = "connect"\ntargets = ["test"]\ncron = "0 6 1 * *"\n')
    out = subprocess.run([str(OPSBOOK), "--config", str(tmp_path / "opsbook.toml"), "schedule", "list", "--json"],
                         capture_output=True, text=True, env={**os.environ, "OPSBOOK_RUNBOOKS": str(FIXTURES)})
    (row,) = json.loads(out.stdout)
    assert row["last_status"] == "ok" and row["last_report"] == o.report and row["next_run"].endswith("06:00:00Z")


# ------------------------------------------------------------------------------------------ timers
def test_install_cron_dry_run_and_systemd_units(fixture_runbooks, tmp_path):
    cfg = tmp_path / "opsbook.toml"
    # a target nobody listens for: the first run-due runs the newest past slot, and it must be quick
    cfg.write_text('[targets.x]\ndsn = "host=127.0.0.1 port=1 dbname=x connect_timeout=1"\n'
                   '[[schedules]]\nname = "m"\nrunbook = "connect"\ntargets = ["x"]\ncron = "0 6 1 * *"\n')
    env = {**os.environ, "OPSBOOK_RUNBOOKS": str(FIXTURES), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    out = subprocess.run([str(OPSBOOK), "--config", str(cfg), "schedule", "install", "--cron", "--dry-run"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    line = out.stdout.splitlines()[0]  # then the history snapshots' line (tests/test_schedule_collect.py)
    assert line.startswith("* * * * * mkdir -p ") and f"{OPSBOOK} --config {cfg} schedule run-due" in line
    assert line.endswith("remove with `opsbook schedule uninstall`)") and "# opsbook schedule run-due" in line
    # the line works on a fresh machine: cron hands everything after the five fields to sh, in a bare environment,
    # before any reports folder exists; the run's output goes to the log
    assert not (tmp_path / "reports").exists()
    ran = subprocess.run(["sh", "-c", line.split(" ", 5)[5]], capture_output=True, text=True,
                         env={"OPSBOOK_RUNBOOKS": str(FIXTURES), "OPSBOOK_HOME": str(tmp_path / "home")}, cwd="/")
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr
    assert (tmp_path / "reports" / "schedule.log").is_file()
    out = subprocess.run([str(OPSBOOK), "--config", str(cfg), "schedule", "install", "--systemd", "--user"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    units = tmp_path / "xdg" / "systemd" / "user"
    name = f"opsbook-schedule-{config_id(cfg)}"
    service, timer = (units / f"{name}.service").read_text(), (units / f"{name}.timer").read_text()
    assert f"ExecStart={OPSBOOK} --config {cfg} schedule run-due" in service and "Type=oneshot" in service
    assert "OnCalendar=*-*-* *:*:00" in timer and "Persistent=true" in timer
    again = subprocess.run([str(OPSBOOK), "--config", str(cfg), "schedule", "install", "--systemd", "--user"],
                           capture_output=True, text=True, env=env)
    assert again.returncode == 0 and sorted(p.name for p in units.iterdir() if "schedule" in p.name) == [
        f"{name}.service", f"{name}.timer"]
    gone = subprocess.run([str(OPSBOOK), "--config", str(cfg), "schedule", "uninstall", "--systemd", "--user"],
                          capture_output=True, text=True, env=env)
    assert gone.returncode == 0 and list(units.iterdir()) == []


# ------------------------------------------------------------------------------------------ retention
def test_reports_prune_keeps_monthly_and_the_index_consistent(tmp_path):
    from opsbook.schedule.retention import prune_reports

    root = tmp_path / "reports"
    for day, runbook in (("2025-01-01", "incident-triage"), ("2025-01-01", "monthly-health"),
                         ("2026-11-30", "incident-triage")):
        stem = root / day / f"{runbook}--prod--060000Z"
        stem.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".html", ".ipynb", ".missing.csv"):
            Path(f"{stem}{suffix}").write_text("x" * 10)
        Path(f"{stem}.json").write_text(json.dumps({"runbook": runbook, "target": "prod", "status": "ok",
                                                    "started_at": f"{day}T06:00:00Z", "findings": []}))
    (root / "2025-01-01" / "notes.txt").write_text("not ours")
    r = prune_reports(root, 400 * 86400, now=dt.datetime(2026, 12, 1, tzinfo=UTC))
    assert (r.removed_runs, r.removed_files, r.kept_monthly) == (1, 4, 1)
    left = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert "2025-01-01/incident-triage--prod--060000Z.html" not in left
    assert "2025-01-01/monthly-health--prod--060000Z.html" in left and "2025-01-01/notes.txt" in left
    index = (root / "index.html").read_text()
    assert "2025-01-01/incident-triage--prod" not in index and "2025-01-01/monthly-health--prod" in index


def test_reports_prune_takes_old_lab_working_copies_unless_a_kept_report_links_them(tmp_path):
    """JupyterLab's working copies (<reports>/lab/<day>/) age like the reports: an old one goes, a recent one and
    one a kept Lab record links to stay, and the emptied day folder goes with it."""
    from opsbook.schedule.retention import prune_reports

    root = tmp_path / "reports"
    lab = root / "lab"
    for day in ("2025-01-01", "2026-11-30"):
        (lab / day).mkdir(parents=True)
        (lab / day / "incident-triage--prod--060000Z.ipynb").write_text("{}")
    (lab / "2025-01-01" / "incident-triage--prod--070000Z.ipynb").write_text("{}")
    kept = root / "2026-11-30" / "incident-triage--prod--080000Z.html"  # a recent Lab record of the old copy
    kept.parent.mkdir(parents=True)
    kept.write_text('<a href="../lab/2025-01-01/incident-triage--prod--070000Z.ipynb">the notebook</a>')
    r = prune_reports(root, 30 * 86400, now=dt.datetime(2026, 12, 1, tzinfo=UTC))
    left = sorted(p.relative_to(lab).as_posix() for p in lab.rglob("*") if p.is_file())
    assert left == ["2025-01-01/incident-triage--prod--070000Z.ipynb", "2026-11-30/incident-triage--prod--060000Z.ipynb"]
    assert (r.removed_runs, r.kept_linked) == (1, 1)
    (kept).unlink()
    prune_reports(root, 30 * 86400, now=dt.datetime(2026, 12, 1, tzinfo=UTC))
    assert not (lab / "2025-01-01").exists(), "an emptied day folder of the lab goes too"
