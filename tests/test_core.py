"""Core pieces against a real server: connect, read-only sessions, the connect-failure classifier, checks."""
from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from opsbook.config.file import from_dict
from opsbook.run.context import Runbook
from opsbook.database.session import connect


def test_session_is_read_only_with_timeouts(any_db):
    session = connect(any_db.config().target("test"))
    try:
        settings = session.query("SELECT current_setting('default_transaction_read_only') AS ro, "
                                 "current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt, "
                                 "current_setting('application_name') AS app").iloc[0].to_dict()
        assert settings == {"ro": "on", "st": "30s", "lt": "1s", "app": "opsbook"}
        with pytest.raises(DBAPIError, match="read-only"):
            session.query("CREATE TABLE must_fail (id int)")
        assert session.server_version_num >= 130000
    finally:
        session.close()


def test_refused_is_a_critical_finding_not_a_crash(tmp_path):
    from conftest import free_port

    cfg = from_dict({"targets": {"t": {"dsn": f"host=127.0.0.1 port={free_port()} user=x dbname=y"}}})
    rb = Runbook("incident-triage", "t", config=cfg)
    assert rb.connect() is None
    [f] = rb.findings
    assert (f.check, f.severity.value, f.value) == ("connectivity.unreachable", "critical", "refused")
    assert rb.run(["connections.saturation"]) == {}


def test_wrong_password_is_told_apart_and_never_shown(pg, monkeypatch):
    import psycopg

    with psycopg.connect(pg.conninfo(), autocommit=True) as c:
        c.execute("DROP ROLE IF EXISTS pw_user")
        c.execute("CREATE ROLE pw_user LOGIN PASSWORD 'right-horse-battery'")
    monkeypatch.setenv("PGPASSWORD", "wrong-staple-4711")
    port = pg.configured_port()
    cfg = from_dict({"targets": {"t": {"dsn": f"host=127.0.0.1 port={port} user=pw_user dbname=postgres"}}})
    rb = Runbook("incident-triage", "t", config=cfg)
    try:
        rb.connect()
    finally:
        with psycopg.connect(pg.conninfo(), autocommit=True) as c:
            c.execute("DROP ROLE pw_user")
    [f] = rb.findings
    assert (f.severity.value, f.value) == ("critical", "auth")
    assert "wrong-staple-4711" not in repr(f.to_dict())


def test_a_check_that_meets_a_held_lock_degrades_to_info(db):
    """lock_timeout on a table someone holds exclusively: an info finding, not a crashed runbook."""
    from opsbook.checks.registry import Check, CheckContext, run_check
    from opsbook.core.findings import Finding

    db.execute("CREATE TABLE busy (id int)")
    holder = db.connect(autocommit=False)
    holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
    probe = Check("test.locked", "reads a locked table", judge=lambda df: [Finding("test.locked", "ok", "read")],
                  data=lambda ctx: ctx.db.query("SELECT count(*) FROM public.busy"))
    session = connect(db.config().target("test"))
    try:
        [f] = run_check(probe, CheckContext(db=session, target=session.target), {}).findings
    finally:
        session.close()
        holder.rollback()
    assert f.severity.value == "info" and "lock_timeout" in f.skipped
