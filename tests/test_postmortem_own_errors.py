"""opsbook's own sessions' errors are not the incident's: a real server (Europe/Paris local time) logs a failing
query of opsbook's (application_name opsbook) and one of an application's; only the latter is the incident's, and
the timeline, in UTC, says how many were left out."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from conftest import _server
from opsbook.logs import Problems, iter_events
from opsbook.incident.postmortem import causes, timeline
from opsbook.incident.postmortem.evidence import Evidence, read_log
from opsbook.incident.postmortem.window import make_window

PREFIX = "%m [%p] %q%u@%d app=%a "
MARKER = "opsbook-test-own-errors-over"


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    server = _server(tmp_path_factory, "own-errors", log_timezone="'Europe/Paris'", logging_collector="on",
                     log_destination="'stderr,csvlog,jsonlog'", log_directory="'log'",
                     log_filename="'postgresql.log'", log_line_prefix=f"'{PREFIX}'", log_connections="on",
                     log_disconnections="on")
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    for app, sql in (("opsbook", "SELECT * FROM public.opsbook_probe_missing"),
                     ("checkout_api", "SELECT 1/0")):
        with psycopg.connect(server.conninfo(), application_name=app, autocommit=True) as c:
            with pytest.raises(psycopg.Error):
                c.execute(sql)
    with psycopg.connect(server.conninfo(), autocommit=True) as c:
        c.execute(f"DO $$BEGIN RAISE LOG '{MARKER}'; END$$")
    end = datetime.now(timezone.utc) + timedelta(seconds=1)
    log_dir = server.data_dir / "log"
    deadline = time.monotonic() + 20
    while not all((log_dir / f"postgresql.{e}").exists() and MARKER in (log_dir / f"postgresql.{e}").read_text(
            errors="replace") for e in ("log", "csv", "json")):
        assert time.monotonic() < deadline, f"{MARKER} never reached the logs in {log_dir}"
        time.sleep(0.05)
    yield log_dir, start, end
    server.stop()


@pytest.mark.parametrize("ext", ["csv", "json", "log"])
def test_the_reader_leaves_out_opsbooks_own_sessions_and_says_how_many(logged, ext):
    log_dir, _, _ = logged
    path = log_dir / f"postgresql.{ext}"
    prefix = PREFIX if ext == "log" else None
    everything = [e for e in iter_events(path, prefix=prefix) if e.severity == "ERROR"]
    assert len(everything) == 2  # the log as written
    problems = Problems()
    errors = [e for e in iter_events(path, prefix=prefix, problems=problems, own=False) if e.severity == "ERROR"]
    assert [e.message for e in errors] == ["division by zero"] and errors[0].application == "checkout_api"
    assert not problems
    (note,) = problems.notes()
    assert "opsbook's own sessions" in note and int(note.split()[0]) >= 3  # connection, error, disconnection


def test_a_prefix_without_application_follows_the_pid_from_its_connection_line(logged, tmp_path):
    log_dir, _, _ = logged
    # the same stderr log as if log_line_prefix had no %a: only the connection line names the application
    text = (log_dir / "postgresql.log").read_text()
    plain = tmp_path / "postgresql.log"
    plain.write_text("\n".join(line.replace(" app=opsbook ", " ").replace(" app=checkout_api ", " ")
                               .replace(" app=[unknown] ", " ").replace(" app= ", " ").replace(" app=psql ", " ")
                               for line in text.splitlines()) + "\n")
    errors = [e for e in iter_events(plain, prefix="%m [%p] %q%u@%d ", own=False) if e.severity == "ERROR"]
    assert [e.message for e in errors] == ["division by zero"]


@pytest.mark.parametrize("ext", ["csv", "log"])
def test_the_timeline_and_causes_leave_out_opsbooks_errors_and_show_utc(logged, ext):
    log_dir, start, end = logged
    window = make_window(start.isoformat(), end.isoformat(), 1)
    ev = Evidence("shop", window)
    ev.log = read_log(log_dir / f"postgresql.{ext}", window, prefix=PREFIX if ext == "log" else None)
    df = timeline.events_table(ev)
    errors = df[df["kind"] == "error"]
    assert list(errors["application"]) == ["checkout_api"], df[["kind", "application", "what"]]
    # opsbook's error reaches the timeline only if the evidence kept it: then one row says it was left out
    left = list(df[df["kind"] == "left_out"]["what"])
    kept_own = [e for e in ev.log.events if e.application == "opsbook" or ev.log.apps.get(e.pid) == "opsbook"]
    assert left == ([f"{len(kept_own)} event(s) of opsbook's own sessions left out (not the incident's)"]
                    if kept_own else [])
    assert all(t.utcoffset() == timedelta(0) for t in df["ts"])  # the log is in Paris time; the table is UTC
    assert all(start <= t <= end for t in df["ts"])
    assert [e.application for e in timeline.incident_events(ev) if e.kind == "error"] == ["checkout_api"]
    series = timeline.log_series(ev)
    assert series["errors"].sum() == 1 and all(t.utcoffset() == timedelta(0) for t in series["ts"])
    assert causes.candidates(ev) == []


def test_the_documents_timeline_in_utc_names_only_the_applications_error(logged):
    from opsbook.incident.postmortem import document

    log_dir, start, end = logged
    window = make_window(start.isoformat(), end.isoformat(), 1)
    ev = Evidence("shop", window)
    ev.log = read_log(log_dir / "postgresql.csv", window)
    app_error = next(e for e in ev.log.events if e.message == "division by zero")
    assert app_error.ts.utcoffset() != timedelta(0)  # the server writes Paris time
    md = document.document(title="t", severity="P2", target="shop", ev=ev, findings=[],
                           imp=document.impact(ev, []), timeline=timeline.events_table(ev))
    table = md.split("## Timeline (UTC)", 1)[1].split("## Root cause", 1)[0]
    assert f"| {app_error.ts.astimezone(timezone.utc):%H:%M:%S} | log | error: ` division by zero" in table
    assert "opsbook_probe_missing" not in table


def test_statements_failed_counts_only_the_applications_error(logged):
    from opsbook.incident.postmortem import document

    log_dir, start, end = logged
    window = make_window(start.isoformat(), end.isoformat(), 1)
    ev = Evidence("shop", window)
    ev.log = read_log(log_dir / "postgresql.csv", window)
    assert document.impact(ev, [])["statements_failed"] == 1
