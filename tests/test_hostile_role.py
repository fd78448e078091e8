"""The audited database's own users are adversaries: a role with CREATE on `public`, and one with only CREATE on the
database (it makes a schema named like opsbook's login role, first on the default search path), plant a hijack of
every function and operator opsbook's SQL calls, and a storage policy whose function tries RESET ROLE, a write and
COPY ... TO PROGRAM. Every runbook, `snapshot` and `watch` (with a lock wait alive, which an attacker can make) then
run as the superuser; none of the planted code may run, and nothing may be written.

On the embedded server and on PostgreSQL 15, each with the demo database built on it."""
from __future__ import annotations

import json
import subprocess
import sys
import threading

import psycopg
import pytest

from conftest import PG15_BIN, _server
from hostile import HostileDatabase, called_functions
from opsbook.config.file import from_dict
from opsbook.database.demo import ensure_demo_database
from opsbook.run.runner import run_runbook

pytestmark = pytest.mark.slow
OPSBOOK = [sys.executable, "-m", "opsbook.cli"]
RUNBOOKS = ("incident-triage", "capacity-planning", "cost-analysis", "security-audit", "monthly-health",
            "post-mortem", "backup-verification", "table-recovery")


def test_the_function_list_is_read_by_postgres_own_parser():
    """The hijack list is not a hand-kept list: it comes from pglast over every SQL file and SQL string."""
    names = called_functions()
    assert {"quote_ident", "unnest", "array_to_string", "left", "string_agg", "to_regclass"} <= names
    assert len(names) >= 60


@pytest.fixture(scope="module", params=["embedded", "pg15"])
def hostile(request, tmp_path_factory):
    if request.param == "pg15" and not (PG15_BIN / "pg_ctl").exists():
        pytest.skip("PostgreSQL 15 binaries not present at /usr/lib/postgresql/15/bin")
    server = _server(tmp_path_factory, f"hostile-{request.param}",
                     bindir=PG15_BIN if request.param == "pg15" else None)
    try:
        ensure_demo_database(server=server)
        h = HostileDatabase(server, "demo", login_role="postgres")
        assert h.plant() > 1000
        history = tmp_path_factory.mktemp("history") / "history.sqlite"
        config_path = tmp_path_factory.mktemp("config") / "opsbook.toml"
        config_path.write_text(f'[targets.h]\ndsn = "{h.admin_conninfo}"\nplan = "pro"\n'
                               f'[history]\nurl = "sqlite:///{history}"\n')
        h.config = from_dict({"targets": {"h": {"dsn": h.admin_conninfo, "plan": "pro"}},
                              "history": {"url": f"sqlite:///{history}"}})
        h.config_path = config_path
        yield h
        h.remove()
    finally:
        server.stop()


def lock_wait(conninfo: str):
    """A session holding a row lock in an open transaction and another waiting for it (what makes watch and triage
    look at blocking trees): returns a function that ends both."""
    holder = psycopg.connect(conninfo, application_name="evil-holder")
    holder.execute("CREATE TABLE IF NOT EXISTS public.evil_lock (id int PRIMARY KEY)")
    holder.execute("INSERT INTO public.evil_lock VALUES (1) ON CONFLICT DO NOTHING")
    holder.commit()
    holder.execute("SELECT * FROM public.evil_lock WHERE id = 1 FOR UPDATE")
    waiter = psycopg.connect(conninfo, autocommit=True, application_name="evil-waiter")
    waiter_pid = waiter.info.backend_pid
    t = threading.Thread(target=lambda: _quietly(waiter, "UPDATE public.evil_lock SET id = 1 WHERE id = 1"),
                         daemon=True)
    t.start()
    with psycopg.connect(conninfo, autocommit=True) as probe:
        for _ in range(600):
            if probe.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                             (waiter_pid,)).fetchone()[0]:
                break
            threading.Event().wait(0.05)

    def end():
        holder.rollback()
        t.join(timeout=30)
        holder.close()
        waiter.close()
    return end


def _quietly(conn, sql):
    try:
        conn.execute(sql)
    except psycopg.Error:
        pass


def test_no_planted_code_runs_in_any_runbook_snapshot_or_watch(hostile, tmp_path):
    end_wait = lock_wait(hostile.admin_conninfo)
    try:
        backup = tmp_path / "backup"
        backup.mkdir()
        for name in RUNBOOKS:
            params = {"backup-verification": {"take_backup": True, "backup": str(backup)},
                      "table-recovery": {"table": "public.leads", "backup": str(backup)}}.get(name, {})
            r = run_runbook(name, "h", params, config=hostile.config, output_dir=tmp_path / "reports")
            assert r.sidecar["status"] == "ok", (name, r.sidecar["error"])
            assert hostile.hits() == [], (name, hostile.hits()[:3])
        env = {"OPSBOOK_CONFIG": str(hostile.config_path)}
        for cmd in (["snapshot", "--target", "h"], ["watch", "--target", "h", "--every", "1s", "--for", "3s"],
                    ["snapshot", "--target", "h"]):
            out = subprocess.run([*OPSBOOK, *cmd], capture_output=True, text=True, timeout=300,
                                 env={**__import__("os").environ, **env})
            assert out.returncode == 0, (cmd, out.stdout[-500:], out.stderr[-1500:])
            assert "Traceback" not in out.stderr
        assert hostile.hits() == []
        assert hostile.escalated() == []
    finally:
        end_wait()
    # the planted code is live and logged: a session with the default search path runs it at once
    hostile.control_call()
    assert hostile.hits(), "the planted functions never run: this test could not fail"
    assert hostile.escalated() == []  # the control call ran as a plain role: its payload failed


def test_watch_records_the_target_answering_despite_ambiguous_overloads(hostile, tmp_path):
    """An overload that makes a call ambiguous used to blind watch ("unreachable"): the samples are real."""
    store = tmp_path / "samples.sqlite"
    cfg = hostile.config_path.read_text().replace(hostile.config_path.read_text().split("[history]")[1],
                                                   f'\nurl = "sqlite:///{store}"\n')
    path = tmp_path / "opsbook.toml"
    path.write_text(cfg)
    out = subprocess.run([*OPSBOOK, "--config", str(path), "watch", "--target", "h", "--every", "1s", "--for", "2s"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    import sqlite3

    with sqlite3.connect(store) as db:
        statuses = [s for (s,) in db.execute("SELECT status FROM " + _samples_table(db))]
    assert statuses and set(statuses) == {"ok"}, statuses


def _samples_table(db) -> str:
    names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return next(n for n in names if "sample" in n)


def test_a_superuser_run_says_so(hostile, tmp_path):
    r = run_runbook("incident-triage", "h", {}, config=hostile.config, output_dir=tmp_path)
    role = [f for f in r.sidecar["findings"] if f["check"] == "connectivity.role"]
    assert role and role[0]["severity"] == "ok" and "a superuser" in role[0]["title"], r.sidecar["findings"][:3]
    assert "superuser: more than a diagnosis needs" in r.html_path.read_text()
    assert "pg_monitor" in role[0]["remediation"] and "README" in role[0]["remediation"]
    assert json.loads(r.sidecar_path.read_text())["findings"] == r.sidecar["findings"]


def test_the_payload_takes_over_a_superuser_session_whose_path_is_not_pinned(hostile):
    """Last in the module: what the attackers' functions do to a superuser's session with PostgreSQL's default
    search path, the one opsbook no longer has: made themselves superuser and copied pg_authid."""
    with psycopg.connect(hostile.admin_conninfo, autocommit=True) as c:
        c.execute("SELECT quote_ident(%s::name)", ("x",))
    assert "ob_evil_db" in hostile.escalated()
