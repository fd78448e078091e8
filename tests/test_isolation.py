"""A check never takes the runbook down: isolated failures, a target dying mid-run, opsbook's own timeout, and a
verdict that says when it is incomplete."""
from __future__ import annotations

import dataclasses

import psycopg
import pytest

from opsbook.incident import triage
from opsbook.checks import REGISTRY, get
from opsbook.checks.registry import STRICT_ENV
from opsbook.run.context import Runbook, gaps_html
from opsbook.core.findings import Finding, gaps
from opsbook.core.severity import incident_priority

FIRST = ("connections.saturation", "connections.idle", "activity.long_running")
REST = ("activity.idle_in_transaction", "locks.blocking", "cache.hit_ratio", "wraparound.xid_age")


def _runbook(db, **kw) -> Runbook:
    rb = Runbook("incident-triage", "test", config=db.config(), **kw)
    assert rb.connect() is not None
    return rb


def _broken(monkeypatch, check_id: str) -> None:
    """Stand in for a bug in one check's judge: the check as registered, with a judge that raises."""
    def judge(df, **thresholds):
        return [None][1]  # IndexError, as a real off-by-one would

    monkeypatch.setitem(REGISTRY, check_id, dataclasses.replace(get(check_id), judge=judge))


def test_an_unexpected_error_is_a_finding_of_that_check_and_the_others_run(db, monkeypatch):
    monkeypatch.delenv(STRICT_ENV)
    _broken(monkeypatch, "cache.hit_ratio")
    rb = _runbook(db)
    rb.run(triage.CHECKS)
    rb.close()
    assert set(rb.results) >= set(triage.CHECKS)  # every check ran, the broken one included
    [f] = rb.results["cache.hit_ratio"].findings
    assert f.severity.value == "warning"
    assert f.title == ("this check failed: IndexError: list index out of range; the rest of the report is valid; "
                       "please report it")
    assert "test_isolation.py" in f.detail and "in judge" in f.detail  # where it failed, for the bug report
    assert all(x.check != "cache.hit_ratio" or x is f for x in rb.findings)
    assert [r for cid, r in rb.results.items() if cid != "cache.hit_ratio" and
            any("this check failed" in x.title for x in r.findings)] == []
    assert gaps(rb.findings) == ["1 check could not be judged (cache.hit_ratio): an error in opsbook, the rest of "
                                 "the report is valid"]
    html = triage.verdict_html(rb.findings)
    assert "This result is incomplete" in html and "1 check could not be judged (cache.hit_ratio)" in html
    assert "This result is incomplete" in gaps_html(rb.findings)


def test_strict_mode_keeps_the_bug_loud(db, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    _broken(monkeypatch, "cache.hit_ratio")
    rb = _runbook(db)
    try:
        with pytest.raises(IndexError):
            rb.run(["cache.hit_ratio"])
    finally:
        rb.close()


def _assert_cut_off(rb, first_lost: str) -> None:
    lost = rb.results[first_lost].findings
    assert [f.skipped.split(":")[0] for f in lost] == ["connection lost"]
    for cid in REST[REST.index(first_lost) + 1:]:
        r = rb.results[cid]
        assert r.duration_ms == 0.0  # never ran against the dead session
        assert [f.skipped for f in r.findings] == ["connection lost: not run, the session died before it"]
    assert rb.db is None and not rb.connected


def test_a_session_cut_mid_run_is_said_and_later_checks_do_not_run(db):
    rb = _runbook(db)
    rb.run(FIRST)
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'opsbook' "
               "AND datname = current_database()")
    rb.run(REST)
    _assert_cut_off(rb, REST[0])
    [probe] = [f for f in rb.findings if f.check == "connectivity.unreachable" and f.value == "lost_answering"]
    assert probe.severity.value == "warning" and "cut during the run" in probe.title
    assert "terminating connection due to administrator command" in probe.detail
    assert any("the database went away during the run: 4 checks cut off" in line for line in gaps(rb.findings))
    assert rb.run(["queries.slow"])["queries.slow"].findings[0].skipped.startswith("connection lost")


def test_the_server_stopping_mid_run_is_a_verdict_not_a_failed_run(tmp_path):
    """A server of its own, stopped for real (pg_ctl stop) between two checks."""
    from conftest import _server, make_database

    server = _server(None, "dies")
    try:
        db = make_database(server)
        rb = _runbook(db)
        rb.run(FIRST)
        server.stop()
        rb.run(REST)
    finally:
        server.stop()
    _assert_cut_off(rb, REST[0])
    [gone] = [f for f in rb.findings if f.value == "lost"]
    assert (gone.check, gone.severity.value) == ("connectivity.unreachable", "critical")
    assert "went away during the run" in gone.title and len(gone.detail) < 500
    assert incident_priority(rb.findings).label == "P0"
    html = triage.verdict_html(rb.findings)
    assert "the database went away during the run" in html and "This result is incomplete" in html
    assert "Is the server up" in html  # the first next action


def test_opsbook_own_statement_timeout_is_not_an_outage(db):
    """1 ms: either the connection set-up or every check's first query is cancelled; never P0 'system down'."""
    rb = Runbook("incident-triage", "test", config=db.config(), statement_timeout_ms=1)
    rb.connect()
    rb.run(triage.CHECKS)
    rb.close()
    assert not [f for f in rb.findings if f.severity.value == "critical"]
    assert incident_priority(rb.findings).label != "P0"
    [conn] = [f for f in rb.findings if f.check == "connectivity.unreachable"]
    if rb.connect_error is not None:
        assert (conn.severity.value, conn.value) == ("warning", "own_timeout")
        assert "statement_timeout_ms" in conn.remediation
    html = triage.verdict_html(rb.findings)
    assert "This result is incomplete" in html and "statement_timeout" in html
    assert "the database is not what is hurting" not in html


def test_partial_visibility_makes_the_verdict_say_incomplete_and_name_the_grant():
    fs = [Finding("locks.blocking", "ok", "no session blocked"),
          Finding("locks.blocking", "info", "partial visibility", skipped="partial visibility: 3 sessions of other "
                  "roles show no state or query to this role"),
          Finding("sequences.exhaustion", "info", "partial visibility", skipped="partial visibility: 2 sequences"),
          Finding("queries.slow", "info", "skipped: not installed", skipped="not available on this database: x")]
    [line] = gaps(fs)
    assert line == ("incomplete: 2 checks saw only part of the database (locks.blocking, sequences.exhaustion); "
                    "grant the monitoring role pg_monitor (or pg_read_all_stats) for the whole picture")
    html = triage.verdict_html(fs)
    assert "This result is incomplete" in html and "pg_monitor" in html
    assert "the database is not what is hurting" not in html
    assert gaps([fs[0], fs[3]]) == [] and "incomplete" not in triage.verdict_html([fs[0], fs[3]])


def test_a_lost_connection_is_told_from_other_errors():
    from opsbook.checks.registry import connection_lost

    assert connection_lost(psycopg.errors.AdminShutdown("terminating connection")) == "terminating connection"
    assert connection_lost(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert connection_lost(psycopg.errors.DivisionByZero("division by zero")) is None
    assert connection_lost(KeyError("x")) is None


def test_a_failing_check_never_quotes_a_password(db, monkeypatch):
    """An error whose message carries a query text (as a KeyError of a row would) is redacted like the text."""
    monkeypatch.delenv(STRICT_ENV)

    def judge(df, **thresholds):
        raise KeyError("ALTER ROLE app PASSWORD 'in-an-error-4711'")

    monkeypatch.setitem(REGISTRY, "cache.hit_ratio", dataclasses.replace(get("cache.hit_ratio"), judge=judge))
    rb = _runbook(db)
    rb.run(["cache.hit_ratio"])
    rb.close()
    [f] = rb.results["cache.hit_ratio"].findings
    assert "in-an-error-4711" not in repr(f.to_dict()) and "PASSWORD '***'" in f.title
