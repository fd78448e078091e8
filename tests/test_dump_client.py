"""The right client for each job (issue 21, defect 3): pg_dump of the server's own major version, a throwaway
cluster of a version that reads its output, chosen apart from client_bindir; the user's PGSSLMODE never applied to
the local scratch; the dump's TLS at least the session's; a pg_hba.conf rejection labelled as such. On real
servers: the embedded PostgreSQL 18, Debian's 15 (with SSL, on 127.0.0.1), and one whose pg_hba.conf turns the
client away."""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from conftest import PG15_BIN, TEST_SETTINGS, _server, drop_database, free_port, make_database
from opsbook.config.file import Target
from opsbook.run.context import Runbook
from opsbook.database.session import NEXT_STEPS, ConnectError, connect
from opsbook.database.embedded import EmbeddedServer, chown_to_account, embedded_bindir
from opsbook.recovery import dump, tools
from opsbook.recovery.recover import TableRecovery
from opsbook.recovery.verify import BackupVerification
from opsbook.recovery.tools import Client
from opsbook.database.sandbox import cluster as sandbox
from test_backup_verification import by_check, seed, take, verify, worst

needs_pg15 = pytest.mark.skipif(not (PG15_BIN / "pg_dump").exists(), reason="Debian's PostgreSQL 15 not installed")


@pytest.fixture
def src(db):
    seed(db)
    return db


@pytest.fixture
def src15(pg15):
    d = make_database(pg15)
    seed(d)
    yield d
    drop_database(d)


# ------------------------------------------------------------------------------------------ 1. which pg_dump
@needs_pg15
def test_the_dump_client_is_the_servers_own_major_where_installed():
    assert tools.choose(150018).bindir == PG15_BIN
    assert tools.choose(150002, conninfo="host=db.example.com sslmode=require").bindir == PG15_BIN
    assert tools.choose(180006).major == 18 and tools.choose(180006).source == "embedded"


def test_without_the_servers_major_the_newest_that_can_dump_it(monkeypatch):
    """Only what cannot run here is made up: clients of 15, 17 and 18 for a 16 server (no 16 installed)."""
    def client(major: int, source: str, ssl: bool) -> Client:
        return Client(Path(f"/opt/pg{major}/bin"), f"{major}.1", major, ssl, source)

    found = [client(18, "embedded", False), client(15, "system", True), client(17, "system", True)]
    monkeypatch.setattr(tools, "candidates", lambda: found)
    assert tools.choose(160004).major == 18  # 15 cannot dump 16; of 17 and 18, the newest
    assert tools.choose(170002).major == 17  # its own major beats a newer one
    assert tools.choose(170002, conninfo="host=db.example.com").major == 17
    # the session is encrypted, so sslmode=require: the embedded 18 (no SSL) is out, whatever its version
    assert tools.choose(160004, conninfo="host=127.0.0.1 sslmode=require").major == 17


@needs_pg15
def test_the_scratch_server_is_the_dumps_own_major_where_installed():
    assert sandbox.server_for(15).bindir == PG15_BIN and sandbox.server_for(15).major == 15
    assert sandbox.server_for(18).bindir == embedded_bindir()
    assert sandbox.server_for(16).major == 18  # no 16 here: a newer server reads a 16 dump
    assert sandbox.server_for(0).source == "embedded"  # maker unknown (a plain script without header)


@needs_pg15
@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_a_postgresql_15_database_is_dumped_by_pg_dump_15_and_restored_into_15(src15, tmp_path, fmt):
    rb, v = verify(src15, take_backup=True, backup=str(tmp_path), dump_format=fmt)
    assert all(f.severity.value == "ok" for f in rb.findings), [(f.check, f.title, f.detail) for f in rb.findings]
    assert v.dump.client.bindir == PG15_BIN and v.backup.dumped_by.startswith("15.")
    detail = by_check(rb)["backup.client"][0].detail  # the report says which pg_dump and which scratch server
    assert f"dump the live database: {PG15_BIN}/pg_dump 15." in detail
    assert f"run the throwaway scratch cluster: {PG15_BIN}/postgres 15." in detail
    assert f"restore the backup: {PG15_BIN}/{'pg_restore' if fmt == 'custom' else 'psql'} 15." in detail
    tables = v.completeness.tables.set_index("table")
    assert tables.loc["leads", "restored_rows"] == 3000 and (tables["status"] == "same").all()
    assert (v.completeness.objects["status"] == "restored").all()


@needs_pg15
def test_client_bindir_of_15_dumps_and_the_scratch_is_chosen_apart(src15, tmp_path):
    """client_bindir names the client for the live database; it no longer has to serve the scratch server too."""
    rb, v = verify(src15, take_backup=True, backup=str(tmp_path), client_bindir=str(PG15_BIN))
    assert worst(rb, "backup.client") == "ok", by_check(rb)["backup.client"][0].detail
    assert worst(rb, "backup.restore") == "ok" and worst(rb, "backup.completeness") == "ok"
    assert v.dump.ok and v.dump.client.bindir == PG15_BIN


@needs_pg15
def test_client_bindir_of_15_with_an_18_scratch_restores_with_the_scratchs_own_client(src15, tmp_path, monkeypatch):
    """Where no 15 server is installed (client package only), the 15 dump goes into the embedded 18 cluster, and
    the restore uses that cluster's own pg_restore: the given 15 client is not asked to serve an 18 server."""
    real = sandbox.server_binaries
    monkeypatch.setattr(sandbox, "server_binaries", lambda: [s for s in real() if s.source == "embedded"])
    rb, v = verify(src15, take_backup=True, backup=str(tmp_path), client_bindir=str(PG15_BIN))
    detail = by_check(rb)["backup.client"][0].detail
    assert worst(rb, "backup.client") == "ok", detail
    assert "run the throwaway scratch cluster: " in detail and "postgres 18." in detail
    assert worst(rb, "backup.restore") == "ok" and worst(rb, "backup.completeness") == "ok"


@needs_pg15
def test_table_recovery_on_15_finds_the_backups_rows(src15, tmp_path):
    take(src15, tmp_path, "custom")
    src15.execute("DELETE FROM interactions; DELETE FROM leads WHERE id <= 40")
    rb = Runbook("table-recovery", "test", config=src15.config())
    rb.connect()
    TableRecovery(rb, table="leads", backup=str(tmp_path)).run()
    rb.close()
    found = {f.check: f for f in rb.findings}
    assert found["recovery.source"].severity.value == "ok", found["recovery.source"].title
    assert found["recovery.missing_rows"].value == 40


# ------------------------------------------------------------------------------------------ 2. PGSSLMODE
@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_the_users_libpq_settings_never_reach_the_local_scratch(src, tmp_path, monkeypatch, fmt):
    path = take(src, tmp_path, fmt)
    with monkeypatch.context() as m:  # undone before the test database is dropped
        m.setenv("PGSSLMODE", "verify-full")  # for the user's own servers; the embedded client has no SSL
        m.setenv("PGSSLROOTCERT", str(tmp_path / "no-such-root.crt"))
        m.setenv("PGOPTIONS", "-c default_transaction_read_only=on")
        rb, v = verify(src, backup=str(path))
    assert worst(rb, "backup.restore") == "ok", [(f.title, f.detail) for f in by_check(rb)["backup.restore"]]
    assert worst(rb, "backup.completeness") == "ok"
    assert v.completeness.tables.set_index("table").loc["leads", "restored_rows"] == 3000


def test_the_scratch_server_itself_gets_no_pg_settings_or_dsns(monkeypatch):
    monkeypatch.setenv("PGSSLMODE", "verify-full")
    monkeypatch.setenv("PROD_DSN", "postgresql://app:s3cret@db.example.com/app")
    with sandbox.throwaway_cluster("opsbook_verify_20261207_000000_0d0d") as c:
        environ = Path(f"/proc/{c.server.pid}/environ").read_bytes().decode().split("\0")
        names = {e.split("=", 1)[0] for e in environ if e}
        assert "PGSSLMODE" not in names and "PROD_DSN" not in names and "TZ" in names
        assert sandbox.live_socket_dirs() == {c.socket_dir}  # how the tools know a connection is local-only
    assert sandbox.live_socket_dirs() == set()


# ------------------------------------------------------------------------------------------ 3. TLS of the dump
@pytest.mark.parametrize(("conninfo", "env", "session_ssl", "expected"), [
    ("host=db.example.com dbname=app", None, False, None),  # clear session: left as it is
    ("host=db.example.com dbname=app", None, True, "require"),
    ("host=db.example.com dbname=app sslmode=prefer", None, True, "require"),
    ("host=db.example.com dbname=app sslmode=allow", None, True, "require"),
    ("host=db.example.com dbname=app sslmode=verify-full", None, True, "verify-full"),
    ("host=db.example.com dbname=app", "verify-ca", True, None),  # PGSSLMODE already as strong: untouched
    ("host=db.example.com dbname=app", "prefer", True, "require"),
    ("postgresql://u@db.example.com/app?sslmode=prefer", None, True, "require"),
])
def test_the_dump_conninfo_is_at_least_as_encrypted_as_the_session(monkeypatch, conninfo, env, session_ssl,
                                                                    expected):
    if env:
        monkeypatch.setenv("PGSSLMODE", env)
    else:
        monkeypatch.delenv("PGSSLMODE", raising=False)
    out = tools.dump_conninfo(conninfo, session_ssl)
    parts = psycopg.conninfo.conninfo_to_dict(out)
    if expected is None:
        assert out == conninfo
    else:
        assert parts["sslmode"] == expected and parts["host"] == "db.example.com" and parts["dbname"] == "app"


def _self_signed(folder: Path) -> tuple[Path, Path]:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", "server.key", "-out", "server.crt", "-days", "2", "-subj", "/CN=127.0.0.1"],
                   cwd=folder, check=True, capture_output=True, timeout=60)
    key, crt = folder / "server.key", folder / "server.crt"
    key.chmod(0o600)
    for p in (key, crt):
        chown_to_account(p)
    return crt, key


@pytest.fixture(scope="module")
def pg15_ssl():
    """Debian's PostgreSQL 15 with SSL on 127.0.0.1, trusting TCP clients with or without SSL (so a dump in clear
    text succeeds quietly: the defect), and logging every connection with its encryption."""
    if not (PG15_BIN / "pg_ctl").exists():
        pytest.skip("PostgreSQL 15 binaries not present")
    home = Path(tempfile.mkdtemp(prefix="pg-15-ssl-", dir=os.environ["OPSBOOK_HOME"]))
    home.chmod(0o711)
    crt, key = _self_signed(home)
    server = EmbeddedServer(home / "data", bindir=PG15_BIN, port=free_port(), settings={
        **TEST_SETTINGS, "ssl": "on", "ssl_cert_file": str(crt), "ssl_key_file": str(key),
        "log_connections": "on"})
    server.init()
    hba = server.data_dir / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    server.start()
    yield server
    server.stop()


def _tcp_database(server: EmbeddedServer):
    d = make_database(server)
    d.conninfo = f"host=127.0.0.1 port={server.configured_port()} user=postgres dbname={d.name} sslmode=prefer"
    return d


def _dump_connections(server: EmbeddedServer, since: int) -> list[str]:
    text = server.log_file.read_text(errors="replace")[since:]
    return [line for line in text.splitlines() if "connection authorized" in line and "opsbook-pg_dump" in line]


def test_the_dump_is_encrypted_when_the_session_is(pg15_ssl, tmp_path):
    d = _tcp_database(pg15_ssl)
    try:
        d.execute("CREATE TABLE secrets (id int PRIMARY KEY, body text); INSERT INTO secrets VALUES (1, 'x')")
        since = pg15_ssl.log_file.stat().st_size
        rb = Runbook("backup-verification", "test", config=d.config())
        rb.connect()
        try:
            assert rb.db.raw.pgconn.ssl_in_use  # the diagnostics are encrypted (sslmode=prefer, a server with SSL)
            v = BackupVerification(rb, take_backup=True, backup=str(tmp_path)).run()
            assert v.dump.ok, v.dump.error
            lines = _dump_connections(pg15_ssl, since)
            assert lines and all("SSL enabled" in line for line in lines), lines
            assert "dump the live database (sslmode=require)" in by_check(rb)["backup.client"][0].detail
            assert tools.session_tls(rb.db) and not tools.session_tls(None)
        finally:
            rb.close()
    finally:
        drop_database(d)


def test_a_client_without_ssl_is_refused_rather_than_dumping_in_clear_text(pg15_ssl, tmp_path):
    d = _tcp_database(pg15_ssl)
    try:
        since = pg15_ssl.log_file.stat().st_size
        rb, v = verify(d, take_backup=True, backup=str(tmp_path), client_bindir=str(embedded_bindir()))
        client = by_check(rb)["backup.client"][0]
        assert client.severity.value == "critical" and "without SSL" in client.detail, client.detail
        assert _dump_connections(pg15_ssl, since) == []  # not one byte of the database left in clear text
        assert list(tmp_path.iterdir()) == []
    finally:
        drop_database(d)


# ------------------------------------------------------------------------------------------ 4. labels
@pytest.fixture(scope="module")
def strict_hba(tmp_path_factory):
    """A server of our own whose pg_hba.conf lets TCP in only for one role, by password."""
    server = _server(tmp_path_factory, "pg-hba")
    with psycopg.connect(server.conninfo(), autocommit=True) as c:
        c.execute("CREATE ROLE opsbook_pw LOGIN PASSWORD 'right-one'")
        (server.data_dir / "pg_hba.conf").write_text(
            "local all all trust\nhost all opsbook_pw 127.0.0.1/32 scram-sha-256\n")
        c.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 30  # the postmaster reloads on its own time: wait until it says so
    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={server.configured_port()} user=postgres dbname=postgres").close()
        except psycopg.OperationalError as e:
            if "no pg_hba.conf entry" in str(e):
                break
        assert time.monotonic() < deadline, "pg_hba.conf was not reloaded within 30 s"
        time.sleep(0.05)
    yield server
    server.stop()


def _connect_error(dsn: str) -> ConnectError:
    with pytest.raises(ConnectError) as e:
        connect(Target("strict", dsn=dsn))
    return e.value


def test_a_pg_hba_rejection_is_labelled_as_such_not_as_a_bad_password(strict_hba, tmp_path):
    port = strict_hba.configured_port()
    e = _connect_error(f"host=127.0.0.1 port={port} user=postgres dbname=postgres")
    assert "no pg_hba.conf entry" in str(e) and "no encryption" in str(e)
    assert e.kind == "hba"
    advice = NEXT_STEPS[e.kind]
    assert "pg_hba.conf has no rule for this host/user/database/encryption" in advice and "sslmode" in advice
    assert "~/.pgpass" not in advice and "rotated" not in advice  # not the advice for a wrong password
    e = _connect_error(f"host=127.0.0.1 port={port} user=opsbook_pw password=wrong-one dbname=postgres")
    assert e.kind == "auth" and "password authentication failed" in str(e) and "wrong-one" not in str(e)
    assert re.search(r"password", NEXT_STEPS["auth"])
    with connect(Target("strict", dsn=f"host=127.0.0.1 port={port} user=opsbook_pw password=right-one "
                                       "dbname=postgres")) as s:
        assert s.server_version_num >= 180000
    # pg_dump meets the same rejection: its error says so too, and leaves no file behind
    result = dump.take(tools.choose(180006), f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
                       tmp_path / "x.dump")
    assert not result.ok and "pg_hba.conf has no rule for this host/user/database/encryption" in result.error
    assert not (tmp_path / "x.dump").exists()
