"""Schedules keep their promise in their own time zone: the slot's local date decides the month a monthly runbook
reports on, and a schedule seen for the first time starts at its next slot unless it asks for `catch_up = true`."""
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

from opsbook.config.file import from_dict
from opsbook.core.errors import ConfigError
from opsbook.schedule.jobs import JobStore, job_runs
from opsbook.schedule.runs import run_due, run_now
from opsbook.schedule.spec import load_schedules

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
UTC = dt.timezone.utc


@pytest.fixture
def runbooks(tmp_path, monkeypatch):
    """The fixture runbooks plus `monthly`: a runbook with a `month` parameter, as monthly-health has, that only
    records what it was given (its sidecar's parameters), so a run is quick and needs no database."""
    folder = tmp_path / "runbooks"
    shutil.copytree(FIXTURES, folder)
    nb = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}, "opsbook": {"purpose": "Records the month it was given."}})
    nb.cells = [nbformat.v4.new_code_cell(
        'target: str = "demo"  # target name\n'
        'month: str = ""  # the month to report on, YYYY-MM <month>; empty: the last complete month',
        metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell("print(month)")]
    nbformat.write(nb, folder / "monthly.ipynb")
    monkeypatch.setenv("OPSBOOK_RUNBOOKS", str(folder))
    return folder


def _config(tmp_path, timezone="UTC", **schedule):
    return from_dict({"history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"},
                      "reports": {"dir": str(tmp_path / "reports")},
                      "schedules": [{"name": "monthly", "runbook": "monthly", "targets": ["demo"],
                                     "cron": "0 6 1 * *", "timezone": timezone, **schedule}]})


def _rows(config) -> list[dict]:
    store = JobStore(config.history_url)
    try:
        return store.rows()
    finally:
        store.close()


def _seen_at(config, slot: dt.datetime) -> None:
    """The store of a schedule that has been running: its run for `slot` went well."""
    store = JobStore(config.history_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(job_runs.insert().values(schedule="monthly", target="demo", slot=slot.timestamp(),
                                                  attempt=1, status="ok", started_at=slot.timestamp(),
                                                  finished_at=slot.timestamp()))
    finally:
        store.close()


def _month_given(outcome) -> str:
    assert outcome.status == "ok", outcome.line()
    sidecar = json.loads(Path(outcome.report).read_text())
    assert sidecar["started_by"] == "schedule" and "OPSBOOK_STARTED_BY" not in os.environ  # run-due's process untouched
    return sidecar["parameters"]["month"]


# ------------------------------------------------------------------------------------------ months
@pytest.mark.parametrize("timezone, slot, month", [
    # 06:00 on Feb 1 in Sydney (UTC+11 in summer) is 19:00 UTC on Jan 31: January has just ended there
    ("Australia/Sydney", dt.datetime(2027, 1, 31, 19, 0, tzinfo=UTC), "2027-01"),
    ("America/New_York", dt.datetime(2027, 2, 1, 11, 0, tzinfo=UTC), "2027-01"),  # 06:00 EST
    ("UTC", dt.datetime(2027, 2, 1, 6, 0, tzinfo=UTC), "2027-01"),
])
def test_the_month_is_the_one_just_ended_in_the_schedules_zone(runbooks, tmp_path, timezone, slot, month):
    config = _config(tmp_path, timezone)
    (s,) = load_schedules(config)
    assert s.latest_slot(slot + dt.timedelta(minutes=30)) == slot
    _seen_at(config, s.latest_slot(slot - dt.timedelta(days=1)))  # last month's slot ran
    (o,) = run_due(config, now=slot + dt.timedelta(minutes=30))  # the timer comes half an hour late
    assert o.slot == slot and _month_given(o) == month
    assert f"{slot.astimezone(s.tz):%Y-%m-%d %H:%M} {timezone}" in o.line()  # the slot as the schedule says it


def test_a_month_set_by_the_schedule_is_kept_and_other_runbooks_get_none(runbooks, tmp_path):
    config = _config(tmp_path, "Australia/Sydney", parameters={"month": "2026-10"})
    slot = dt.datetime(2027, 1, 31, 19, 0, tzinfo=UTC)
    _seen_at(config, slot - dt.timedelta(days=31))
    (o,) = run_due(config, now=slot)
    assert _month_given(o) == "2026-10"
    (tmp_path / "other").mkdir()
    other = _config(tmp_path / "other", "Australia/Sydney", runbook="empty")
    _seen_at(other, slot - dt.timedelta(days=31))
    (o,) = run_due(other, now=slot)
    assert o.status == "ok" and "month" not in json.loads(Path(o.report).read_text())["parameters"]


def test_months_missed_are_caught_up_once_with_the_newest_slots_month(runbooks, tmp_path):
    config = _config(tmp_path, "Australia/Sydney")
    _seen_at(config, dt.datetime(2026, 10, 31, 19, 0, tzinfo=UTC))  # Nov 1 06:00 in Sydney, then the timer stopped
    (o,) = run_due(config, now=dt.datetime(2027, 3, 15, tzinfo=UTC))
    assert o.slot == dt.datetime(2027, 2, 28, 19, 0, tzinfo=UTC) and _month_given(o) == "2027-02"
    assert run_due(config, now=dt.datetime(2027, 3, 15, 0, 1, tzinfo=UTC)) == []


# ------------------------------------------------------------------------------------------ first run-due
INSTALLED = dt.datetime(2026, 12, 7, 15, 13, tzinfo=UTC)


def test_a_new_schedule_starts_at_its_next_slot(runbooks, tmp_path):
    config = _config(tmp_path)
    said: list[str] = []
    assert run_due(config, now=INSTALLED, progress=said.append) == []  # not December's slot of the 1st at once
    assert not list((tmp_path / "reports").glob("*/*.json"))
    assert len(said) == 1 and "first slot 2027-01-01 06:00 UTC" in said[0] and "catch_up = true" in said[0], said
    assert run_due(config, now=INSTALLED + dt.timedelta(minutes=1), progress=said.append) == []
    assert len(said) == 1  # said once, not every minute
    (row,) = _rows(config)
    assert row["status"] == "skipped" and row["slot"] == dt.datetime(2026, 12, 1, 6, tzinfo=UTC).timestamp()
    (o,) = run_due(config, now=dt.datetime(2027, 1, 1, 6, 0, 4, tzinfo=UTC))  # its first slot comes: it runs
    assert _month_given(o) == "2026-12"


def test_a_new_schedule_whose_slot_is_this_minute_runs_it(runbooks, tmp_path):
    config = _config(tmp_path, "Australia/Sydney")  # first seen as the timer fires for its slot
    (o,) = run_due(config, now=dt.datetime(2027, 1, 31, 19, 0, 20, tzinfo=UTC))
    assert _month_given(o) == "2027-01"


def test_catch_up_runs_the_newest_past_slot_at_once(runbooks, tmp_path):
    config = _config(tmp_path, catch_up=True)
    # the newest slot at or before the first run-due is Dec 1 06:00: the report it makes is November's, the one
    # that slot would have made had the schedule been there (December has not ended)
    (o,) = run_due(config, now=INSTALLED)
    assert o.slot == dt.datetime(2026, 12, 1, 6, tzinfo=UTC) and _month_given(o) == "2026-11"
    assert run_due(config, now=INSTALLED + dt.timedelta(minutes=1)) == []  # once


def test_a_manual_run_of_a_new_schedule_does_not_make_the_timer_catch_up(runbooks, tmp_path):
    config = _config(tmp_path, cron="0 6 1 1 *")  # yearly: its newest slot is never this minute
    (o,) = run_now(config, "monthly")
    assert o.status == "ok"
    assert run_due(config) == []
    assert sorted(r["status"] for r in _rows(config)) == ["ok", "skipped"]


def test_catch_up_must_be_true_or_false(runbooks, tmp_path):
    with pytest.raises(ConfigError, match="schedule 'monthly': catch_up must be true or false") as e:
        load_schedules(_config(tmp_path, catch_up="yes"))
    assert e.value.exit_code == 2


# ------------------------------------------------------------------------------------------ the real runbook
@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime (apt-get install faketime)")
def test_monthly_health_from_sydney_reports_january_under_faketime(tmp_path, db):
    """The timer's own path: `opsbook schedule run-due` in a process whose clock says 2027-01-31 19:30 UTC
    (06:30 on Feb 1 in Sydney), running the real monthly-health on a real database."""
    cfg = tmp_path / "opsbook.toml"
    cfg.write_text(f"[targets.test]\ndsn = {json.dumps(db.conninfo)}\n"
                   f"[history]\nurl = \"sqlite:///{tmp_path}/history.sqlite\"\n[reports]\ndir = \"{tmp_path}/reports\"\n"
                   '[[schedules]]\nname = "monthly"\nrunbook = "monthly-health"\ntargets = ["test"]\n'
                   'cron = "0 6 1 * *"\ntimezone = "Australia/Sydney"\n')
    config = from_dict({"history": {"url": f"sqlite:///{tmp_path}/history.sqlite"}})
    store = JobStore(config.history_url)
    try:  # January's slot ran: this is a schedule that has been running, not a new one
        with store.engine.begin() as conn:
            conn.execute(job_runs.insert().values(schedule="monthly", target="test", attempt=1, status="ok",
                                                  slot=dt.datetime(2026, 12, 31, 19, tzinfo=UTC).timestamp(),
                                                  started_at=0.0))
    finally:
        store.close()
    opsbook = Path(sys.executable).parent / "opsbook"
    out = subprocess.run(["faketime", "2027-01-31 19:30:00", str(opsbook), "--config", str(cfg), "schedule",
                          "run-due"], capture_output=True, text=True, timeout=300, check=False,
                         env={**os.environ, "TZ": "UTC"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "monthly on test (slot 2027-02-01 06:00 Australia/Sydney, attempt 1): ok" in out.stdout, out.stdout
    (sidecar,) = (tmp_path / "reports").glob("2027-01-31/monthly-health--test--*.json")
    html = sidecar.with_suffix(".html").read_text()
    assert "January 2027" in html and "In December 2026" not in html  # before: the month before Jan 31 in UTC
    params = json.loads(sidecar.read_text())["parameters"]
    assert params.get("month") == "2027-01"
    assert params.get("timezone") == "Australia/Sydney", "the month's days are counted on the schedule's clock"


@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime (apt-get install faketime)")
def test_the_timers_first_run_due_waits_for_the_next_slot_under_faketime(tmp_path):
    """Installed on December 7: the timer's first `run-due` runs nothing and says when the schedule starts; at
    that slot (06:00 on Jan 1 in Sydney, 19:00 UTC on Dec 31) it runs."""
    cfg = tmp_path / "opsbook.toml"
    cfg.write_text(f"[history]\nurl = \"sqlite:///{tmp_path}/history.sqlite\"\n[reports]\ndir = \"{tmp_path}/reports\"\n"
                   '[[schedules]]\nname = "monthly"\nrunbook = "empty"\ntargets = ["demo"]\n'
                   'cron = "0 6 1 * *"\ntimezone = "Australia/Sydney"\n')
    env = {**os.environ, "TZ": "UTC", "OPSBOOK_RUNBOOKS": str(FIXTURES)}
    opsbook = Path(sys.executable).parent / "opsbook"

    def run_due_at(when: str) -> subprocess.CompletedProcess:
        return subprocess.run(["faketime", when, str(opsbook), "--config", str(cfg), "schedule", "run-due"],
                              capture_output=True, text=True, timeout=300, check=False, env=env)

    first = run_due_at("2026-12-07 15:13:00")
    assert first.returncode == 0 and first.stderr == "", first.stderr
    assert first.stdout.startswith("monthly: new schedule, first slot 2027-01-01 06:00 Australia/Sydney"), first.stdout
    assert run_due_at("2026-12-07 15:14:00").stdout == ""
    assert not list(tmp_path.glob("reports/*/*.json"))
    at_slot = run_due_at("2026-12-31 19:00:03")
    assert "monthly on demo (slot 2027-01-01 06:00 Australia/Sydney, attempt 1): ok" in at_slot.stdout, at_slot
    assert len(list(tmp_path.glob("reports/2026-12-31/empty--demo--*.json"))) == 1
