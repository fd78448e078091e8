"""opsbook through PgBouncer (Debian's, started here on 127.0.0.1, on an ordinary port: never 6543) in transaction and
in session mode, with an application writing through the same pooler as the same user: every runbook, snapshot and
watch run without one failed application write, the application's sessions keep their own settings, opsbook's
session never writes, and a scratch restore target behind the pooler is refused in one line."""
from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from conftest import _server
from opsbook.config.file import from_dict
from opsbook.database.session import connect
from opsbook.run.runner import run_runbook
from pooler import PGBOUNCER, Application, Bouncer

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(PGBOUNCER), reason="pgbouncer is not installed (.ci/run adds it)")]
OPSBOOK = [sys.executable, "-m", "opsbook.cli"]
RUNBOOKS = ("incident-triage", "capacity-planning", "cost-analysis", "security-audit", "monthly-health",
            "post-mortem", "backup-verification", "table-recovery")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = _server(tmp_path_factory, "pooled")
    with psycopg.connect(s.conninfo(), autocommit=True) as c:
        c.execute("CREATE DATABASE app")
    with psycopg.connect(s.conninfo(dbname="app"), autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; "
                  "CREATE TABLE public.leads (id int PRIMARY KEY, email text, created_at timestamptz DEFAULT now()); "
                  "INSERT INTO public.leads SELECT g, 'x' || g, now() - g * interval '1 hour' "
                  "FROM generate_series(1, 500) g; ANALYZE")
    yield s
    s.stop()


@pytest.fixture(scope="module", params=["transaction", "session"])
def bouncer(request, server):
    # transaction mode: 2 server connections for the application's 3 clients and opsbook, so they take turns on the
    # same ones; session mode holds one per client, so it needs enough for all of them
    b = Bouncer(server, request.param, home=os.environ["OPSBOOK_HOME"],
                pool_size=2 if request.param == "transaction" else 12)
    yield b
    b.stop()


def config_for(b: Bouncer, history, **extra):
    return from_dict({"targets": {"pooled": {"dsn": b.conninfo("app")}, **extra},
                      "history": {"url": f"sqlite:///{history}"}})


def test_the_session_notices_the_pooler_and_never_writes(bouncer, tmp_path):
    app = Application(bouncer.conninfo("app"))
    try:
        session = connect(config_for(bouncer, tmp_path / "h.sqlite").target("pooled"))
        assert session.proxied  # PgBouncer answers with a backend key of its own, not the server's pid
        writes = 0
        for i in range(10):
            try:
                session.query(f"CREATE TABLE public.opsbook_wrote_{i} (x int)")
                writes += 1
            except Exception as e:  # noqa: BLE001
                assert "read-only transaction" in str(e), e
        session.close()
    finally:
        app.stop()
    assert writes == 0
    assert app.writes > 0 and app.failures == [] and app.foreign == []


def test_every_runbook_snapshot_and_watch_leave_the_application_alone(bouncer, tmp_path):
    history = tmp_path / "history.sqlite"
    cfg = config_for(bouncer, history)
    path = tmp_path / "opsbook.toml"
    path.write_text(f'[targets.pooled]\ndsn = "{bouncer.conninfo("app")}"\n[history]\nurl = "sqlite:///{history}"\n')
    backup = tmp_path / "backup"
    backup.mkdir()
    app = Application(bouncer.conninfo("app"))
    try:
        for name in RUNBOOKS:
            params = {"backup-verification": {"take_backup": True, "backup": str(backup)},
                      "table-recovery": {"table": "public.leads", "backup": str(backup)}}.get(name, {})
            r = run_runbook(name, "pooled", params, config=cfg, output_dir=tmp_path / "reports")
            assert r.sidecar["status"] == "ok", (name, r.sidecar["error"])
            unreachable = [f for f in r.sidecar["findings"] if f["check"] == "connectivity.unreachable"
                           and f["severity"] != "ok"]
            assert unreachable == [], (name, unreachable)
            assert app.failures == [] and app.foreign == [], (name, app.failures[:3], app.foreign[:3])
            if name == "backup-verification":  # pg_dump's session settings would stay on a pooled connection
                said = " ".join(f["title"] + " " + (f["detail"] or "") for f in r.sidecar["findings"]
                                if f["check"] == "backup.missing")
                assert "connection pooler" in said and "direct connection" in said, said
        for cmd in (["watch", "--target", "pooled", "--every", "1s", "--for", "4s"], ["snapshot", "--target", "pooled"]):
            out = subprocess.run([*OPSBOOK, "--config", str(path), *cmd], capture_output=True, text=True, timeout=300)
            assert out.returncode == 0 and "Traceback" not in out.stderr, (cmd, out.stderr[-2000:])
    finally:
        app.stop()
    assert app.writes > 50 and app.failures == [] and app.foreign == []


def test_a_scratch_restore_target_behind_the_pooler_is_refused_in_one_line(bouncer, server, tmp_path):
    history = tmp_path / "history.sqlite"
    path = tmp_path / "opsbook.toml"
    path.write_text(f'[targets.pooled]\ndsn = "{bouncer.conninfo("app")}"\n'
                    f'[targets.scratchpool]\ndsn = "{bouncer.conninfo("postgres")}"\nscratch = true\n'
                    f'[history]\nurl = "sqlite:///{history}"\n')
    backup = tmp_path / "backup"
    backup.mkdir()
    out = subprocess.run([*OPSBOOK, "--config", str(path), "run", "backup-verification", "--target", "pooled",
                          "-p", "take_backup=true", "-p", f"backup={backup}", "-p", "restore_target=scratchpool",
                          "--output-dir", str(tmp_path / "reports"), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert "Traceback" not in out.stderr
    record = out.stdout
    assert "connection pooler" in record and "direct connection" in record, (out.returncode, out.stderr[-1500:])
    with psycopg.connect(server.conninfo(), autocommit=True) as c:
        left = c.execute("SELECT datname FROM pg_database WHERE datname LIKE 'opsbook_verify_%'").fetchall()
        locks = c.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0]
    assert left == [] and locks == 0
