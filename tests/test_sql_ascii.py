"""A SQL_ASCII database (initdb's choice where LANG is unset): every runbook runs there, its text arrives decoded
(UTF-8, a byte that is not UTF-8 as U+FFFD) and what came from the database is still escaped in the report."""
from __future__ import annotations

import html

import psycopg
import pytest

from conftest import Database, _server, drop_database
from faults import Faults
from opsbook.config.file import from_dict
from opsbook.database.session import connect
from opsbook.run.runner import run_runbook

# A latin-1 "é" (0xE9) is not UTF-8: a SQL_ASCII database stores it as it came, and psycopg returns its text as bytes.
LATIN1_NAME = b"<i>caf\xe9</i>"
DECODED_NAME = "<i>caf\ufffd</i>"
QUERY_MARK = b"<script>x\xe9</script>"


@pytest.fixture(scope="module")
def ascii_db(tmp_path_factory):
    """A SQL_ASCII database holding a table whose name carries a latin-1 byte and markup, with dead rows, on a
    server of this module's own (its latin-1 statements stay in pg_stat_statements after the drop, and would make
    the view's texts fail to convert in the shared servers' UTF8 databases)."""
    pg = _server(tmp_path_factory, "sql-ascii")
    name = "t_sql_ascii"
    with psycopg.connect(pg.conninfo(), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'")
    d = Database(pg, name)
    with psycopg.connect(d.conninfo, autocommit=True) as c:
        assert c.info.encoding == "ascii"  # psycopg's name for SQL_ASCII: text comes back as bytes
        table = b'public."' + LATIN1_NAME + b'"'
        c.execute(b"CREATE TABLE " + table + b" (id int PRIMARY KEY, note text)")
        c.execute(b"INSERT INTO " + table + b" SELECT g, 'caf\xe9' FROM generate_series(1, 20000) g")
        c.execute(b"DELETE FROM " + table + b" WHERE id % 2 = 0")
        c.execute(b"COMMENT ON TABLE " + table + b" IS 'd\xe9j\xe0 <b>vu</b>'")
    yield d
    drop_database(d)
    pg.stop()


def test_session_reads_text_as_str(ascii_db):
    """Failed before: SQLAlchemy's set-up raised `TypeError: cannot use a string pattern on a bytes-like object`."""
    cfg = from_dict({"targets": {"test": {"dsn": ascii_db.conninfo}}})
    with connect(cfg.targets["test"]) as s:
        assert s.scalar("SELECT pg_catalog.current_setting('server_encoding')") == "SQL_ASCII"
        names = s.query("SELECT relname::text AS name, relname AS raw FROM pg_catalog.pg_class "
                        "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'")
        assert list(names["name"]) == [DECODED_NAME] and list(names["raw"]) == [DECODED_NAME]
        assert s.scalar("SELECT pg_catalog.obj_description(c.oid, 'pg_class') FROM pg_catalog.pg_class c "
                        "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'") == "d\ufffdj\ufffd <b>vu</b>"
        assert s.scalar("SELECT 'public'::regnamespace") == "public"  # a type without a text loader of its own


LONG_RUNNING = {"activity.long_running": {"warning": 0.5, "critical": 3600}}


@pytest.mark.slow
@pytest.mark.parametrize("runbook,params", [("incident-triage", {"thresholds": LONG_RUNNING}),
                                            ("capacity-planning", {}), ("security-audit", {}),
                                            ("cost-analysis", {}), ("monthly-health", {})])
def test_runbook_runs_on_sql_ascii(ascii_db, tmp_path, runbook, params):
    """Failed before: 0 findings, status failed at connect. Now the run is ok, and a query text holding a byte that
    is not UTF-8 (an active statement) shows decoded and HTML-escaped in incident-triage."""
    with Faults(ascii_db.conninfo) as f:
        s = f.session("latin1")
        f.in_thread(s, b"SELECT pg_sleep(120) /* " + QUERY_MARK + b" */")
        f.wait_for("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active' "
                   "AND now() - query_start > interval '1 second')", (s.info.backend_pid,))
        cfg = from_dict({"targets": {"test": {"dsn": ascii_db.conninfo}},
                         "history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"}})
        result = run_runbook(runbook, target="test", config=cfg, output_dir=tmp_path, params=params)
    side = result.sidecar
    assert side["status"] == "ok", side["error"]
    assert side["findings"], "a run that read nothing"
    page = result.html_path.read_text(encoding="utf-8")
    assert "<script>x" not in page and "<i>caf" not in page  # data stays data
    if runbook == "capacity-planning":  # the table with the latin-1 byte is named, decoded and escaped
        assert html.escape(DECODED_NAME) in page, "the table was not shown"
    if runbook == "incident-triage":
        long = [f for f in side["findings"] if f["check"] == "activity.long_running" and f["severity"] != "ok"]
        assert long, side["findings"]
        assert html.escape("<script>x\ufffd</script>") in page or "&lt;script&gt;x\ufffd&lt;/script&gt;" in page
