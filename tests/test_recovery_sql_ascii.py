"""Backups of a SQL_ASCII database (initdb's choice where LANG is unset) whose names and rows hold bytes of several
encodings: backup-verification and table-recovery restore them whole, byte for byte, and report no false loss."""
from __future__ import annotations

import subprocess

import psycopg
import pytest

from conftest import PG15_BIN, Database, _server, drop_database
from opsbook.run.context import Runbook
from opsbook.recovery import tools
from opsbook.recovery.recover import TableRecovery
from opsbook.recovery.verify import BackupVerification
from test_backup_verification import take

LATIN1 = b"caf\xe9"  # "café" in latin-1: not UTF-8, stored as it came
UTF8 = "café".encode()
ORDERS = "заказы".encode()  # a UTF-8 name, as an application that speaks UTF-8 to a SQL_ASCII database makes it
SETUP = [
    b'CREATE TABLE public."' + ORDERS + b'" (id int PRIMARY KEY, "' + "примечание".encode()
    + b'" text, raw bytea)',
    b'INSERT INTO public."' + ORDERS + b'" SELECT g, CASE g % 3 WHEN 0 THEN \'' + LATIN1 + b"' WHEN 1 THEN '"
    + "Ölçü ".encode() + b"' || g ELSE 'plain ' || g END, '\\x00ff'::bytea FROM generate_series(1, 300) g",
    b'CREATE TABLE public."' + LATIN1 + b'" (id int PRIMARY KEY, note text)',
    b'INSERT INTO public."' + LATIN1 + b'" SELECT g, \'' + LATIN1 + b"' FROM generate_series(1, 40) g",
    b'CREATE TABLE public."' + UTF8 + b'" (id int PRIMARY KEY, note text)',
    b'INSERT INTO public."' + UTF8 + b'" SELECT g, \'' + UTF8 + b"' FROM generate_series(1, 50) g",
    b'CREATE INDEX "' + LATIN1 + b'_note" ON public."' + LATIN1 + b'" (note)',
    b'CREATE VIEW public."' + "вид".encode() + b'" AS SELECT id FROM public."' + ORDERS + b'"',
    b"COMMENT ON TABLE public.\"" + ORDERS + b"\" IS 'd\xe9j\xe0 vu'",
]


@pytest.fixture(scope="module")
def ascii_server(tmp_path_factory):
    """A server of this module's own: statements with latin-1 bytes stay in its pg_stat_statements after the
    database is dropped (the view's texts then fail to convert in every UTF8 database of the cluster), so they
    must not reach the suite's shared servers."""
    server = _server(tmp_path_factory, "ascii-18")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ascii_target(tmp_path_factory):
    """Debian's PostgreSQL 15 as a restore target of this module's own, with pg_stat_statements in `postgres`."""
    if not (PG15_BIN / "pg_ctl").exists():
        pytest.skip("PostgreSQL 15 binaries not present at /usr/lib/postgresql/15/bin")
    server = _server(tmp_path_factory, "ascii-15", bindir=PG15_BIN)
    with psycopg.connect(server.conninfo(), autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    yield server
    server.stop()


@pytest.fixture
def ascii_src(ascii_server):
    pg = ascii_server
    name = "t_recovery_sql_ascii"
    with psycopg.connect(pg.conninfo(), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'")
    d = Database(pg, name)
    with psycopg.connect(d.conninfo, autocommit=True) as c:
        for statement in SETUP:
            c.execute(statement)
    yield d
    drop_database(d)


def content(database) -> dict[bytes, bytes]:
    """Every user table's rows as bytes (name -> md5 over its rows in key order), read without any decoding."""
    with psycopg.connect(database.conninfo, autocommit=True) as c:  # SQL_ASCII: psycopg returns text as bytes
        names = [r[0] for r in c.execute("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                                         "AND relkind = 'r' ORDER BY relname::bytea")]
        return {n: c.execute(b'SELECT count(*) || md5(string_agg(t::text, \'|\' ORDER BY t.id)) FROM public."'
                             + n + b'" t').fetchone()[0] for n in names}


@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_backup_verification_of_a_sql_ascii_database_is_clean(ascii_src, tmp_path, fmt):
    """Failed before: the restore into a UTF8 scratch refused the latin-1 bytes ('invalid byte sequence'), and the
    tables it took with it were reported missing from the restore: a false critical."""
    backup = take(ascii_src, tmp_path, fmt)
    rb = Runbook("backup-verification", "test", config=ascii_src.config())
    rb.connect()
    v = BackupVerification(rb, backup=str(backup)).run()
    rb.close()
    severities = {f.check: f.severity.value for f in rb.findings if f.check.startswith("backup.")}
    assert severities["backup.restore"] == "ok" and severities["backup.completeness"] == "ok", \
        [(f.check, f.severity.value, f.title, f.detail) for f in rb.findings if f.severity.value != "ok"]
    tables = v.completeness.tables
    assert len(tables) == 3 and (tables["status"] == "same").all(), tables
    assert set(tables["table"]) == {"заказы", "café", "caf\ufffd"}
    assert sorted(tables["restored_rows"]) == [40, 50, 300]
    assert v.scratch.encoding == "SQL_ASCII"


@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_table_recovery_of_a_sql_ascii_table_brings_rows_back_byte_for_byte(ascii_src, tmp_path, fmt, monkeypatch):
    """Failed before: the scratch restore lost the table (its latin-1 rows were refused), or a query naming it could
    not be sent ('ascii' codec can't encode), so nothing was compared. Now the .sql script and apply=True each bring
    the deleted rows back with their latin-1 and UTF-8 bytes as they were."""
    monkeypatch.setenv("OPSBOOK_REPORT_STEM", str(tmp_path / "report"))
    backup = take(ascii_src, tmp_path, fmt)
    before = content(ascii_src)
    delete = b'DELETE FROM public."' + ORDERS + b'" WHERE id BETWEEN 10 AND 21'
    ascii_src.execute(delete)
    rb, r = recover(ascii_src, backup)
    missing = [f for f in rb.findings if f.check == "recovery.missing_rows"]
    assert missing and missing[0].value == 12, [(f.check, f.severity.value, f.title) for f in rb.findings]
    assert set(r.missing_sample["id"]) == set(range(10, 22))
    assert LATIN1 in (tmp_path / "report.missing.csv").read_bytes()
    out = subprocess.run([tools.choose(180000).path("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                          ascii_src.conninfo, "-f", str(tmp_path / "report.missing.sql")], capture_output=True)
    assert out.returncode == 0, out.stderr
    assert content(ascii_src) == before  # the script put back the very bytes
    ascii_src.execute(delete)
    rb, _ = recover(ascii_src, backup, apply=True, confirm="заказы")
    applied = [f for f in rb.findings if f.check == "recovery.apply"][0]
    assert applied.severity.value == "ok" and applied.value == 12, applied
    assert content(ascii_src) == before  # and so did apply=True


def recover(database, backup, **kw):
    rb = Runbook("table-recovery", "test", config=database.config())
    rb.connect()
    r = TableRecovery(rb, table="заказы", backup=str(backup), **kw).run()
    rb.close()
    return rb, r


def test_a_scratch_database_on_a_restore_target_takes_the_dump_s_encoding_too(ascii_src, ascii_target, tmp_path):
    """restore_target: the scratch database is made on a server marked `scratch = true`, in the dump's encoding
    (that server's default, UTF8 here, refuses the latin-1 rows); the restore's statements leave that server's
    pg_stat_statements with the scratch, so its UTF8 databases still read the view's texts."""
    pg15 = ascii_target
    take(ascii_src, tmp_path, "custom")
    config = ascii_src.config()
    config.targets["spare"] = type(config.targets["test"])("spare", dsn=pg15.conninfo(), extra={"scratch": True})
    rb = Runbook("backup-verification", "test", config=config)
    rb.connect()
    v = BackupVerification(rb, backup=str(tmp_path), restore_target="spare").run()
    rb.close()
    assert v.scratch.kind == "database" and v.scratch.encoding == "SQL_ASCII" and v.scratch.dropped
    tables = v.completeness.tables
    assert len(tables) == 3 and (tables["status"] == "same").all(), tables
    assert not [f for f in rb.findings if f.check == "backup.completeness" and f.severity.value != "ok"]
    with psycopg.connect(pg15.conninfo(), autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM pg_stat_statements(false) s WHERE NOT EXISTS "
                         "(SELECT 1 FROM pg_database d WHERE d.oid = s.dbid)").fetchone()[0] == 0
        assert c.execute("SELECT count(query) FROM pg_stat_statements").fetchone()[0] > 0  # no ERROR: texts read
