"""The incident-triage runbook through the runner, against faults made for real: each check's id and severity in the
sidecar, a healthy database with no warning, the verdict, the recorded numbers, and confirm-gated remediation."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from conftest import drop_database, free_port, make_database
from faults import (Faults, advisory_wait, alive, blocking_chain, burn_xids, deadlock, idle_in_transaction,
                    idle_sessions, inactive_slot, long_running, slow_statements, temp_file_sort)
from opsbook.database.embedded import EmbeddedServer
from opsbook.run.runner import run_runbook

pytestmark = pytest.mark.slow

XID_SPACE = 2 ** 31


def run(db, params=None, **target):
    result = run_runbook("incident-triage", "test", params or {}, config=db.config(**target),
                         output_dir=db.server.data_dir.parent / "reports")
    assert result.exit_code == 0 and result.sidecar["status"] == "ok", result.sidecar["error"]
    return result.sidecar


def about(sidecar, check, obj=None):
    """The findings of one check (about one object, when given)."""
    return [f for f in sidecar["findings"] if f["check"] == check and (obj is None or obj in f["objects"])]


def severity_of(sidecar, check, obj=None):
    found = about(sidecar, check, obj)
    assert len(found) == 1, (check, obj, found)
    return found[0]["severity"]


def worst(sidecar) -> set[str]:
    return {f"{f['check']}: {f['title']}" for f in sidecar["findings"] if f["severity"] in ("warning", "critical")}


@pytest.fixture(scope="module")
def small_pg():
    """A server of its own: 20 connections, no pg_stat_statements, 2 MB of shared buffers (a cold cache).

    Its folder is outside /tmp/pytest-of-<user>: pytest makes that 0700 whenever another session starts, and the
    server account could then no longer reach its own data directory.
    """
    home = Path(tempfile.mkdtemp(prefix="opsbook-small-"))
    server = EmbeddedServer(home / "data", port=free_port(), settings={
        "max_connections": "20", "shared_preload_libraries": "", "shared_buffers": "2MB", "fsync": "off",
        "synchronous_commit": "off", "full_page_writes": "off"})
    server.start()
    yield server
    server.destroy()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def small_db(small_pg):
    d = make_database(small_pg)
    yield d
    drop_database(d)


def test_a_healthy_database_is_p3_with_nothing_to_do(small_db):
    sidecar = run(small_db)
    assert worst(sidecar) == set()
    checks = {f["check"] for f in sidecar["findings"]}
    assert checks >= {"connectivity.unreachable", "connections.saturation", "connections.idle", "locks.blocking",
                      "locks.deadlocks", "activity.long_running", "activity.idle_in_transaction", "queries.slow",
                      "cache.hit_ratio", "replication.slots", "replication.lag", "wraparound.xid_age",
                      "storage.temp_files", "app.freshness", "remediation.backends"}
    skipped = about(sidecar, "queries.slow")[0]
    assert skipped["severity"] == "info" and "not installed" in skipped["skipped"]
    m = sidecar["metrics"]
    assert m["incident_priority"] == 3 and m["connections_max"] == 20 and m["blocked_sessions"] == 0
    assert 1 <= m["connections_used"] <= 5 and m["xid_age_max"] > 0 and m["longest_transaction_s"] >= 0


def _standby(primary: EmbeddedServer, root) -> EmbeddedServer:
    """A streaming standby of `primary`, made with pg_basebackup -R, owned by the server account."""
    data = root / "standby"
    subprocess.run([str(primary.bindir / "pg_basebackup"), "-D", str(data), "-R", "-X", "stream", "-c", "fast",
                    "-h", str(primary.data_dir), "-p", str(primary.configured_port()), "-U", "postgres"],
                   check=True, capture_output=True)
    # the copy carries the primary's opsbook.conf, port included: a server keeps the port it was given, so the
    # standby is given its own
    conf = data / "opsbook.conf"
    conf.write_text("".join(line for line in conf.read_text().splitlines(True) if not line.startswith("port ")))
    if os.geteuid() == 0:
        shutil.chown(data, "opsbook-pg", "opsbook-pg")
        for dirpath, dirs, files in os.walk(data):
            for name in dirs + files:
                shutil.chown(os.path.join(dirpath, name), "opsbook-pg", "opsbook-pg")
    data.chmod(0o700)
    (data / "postmaster.pid").unlink(missing_ok=True)
    standby = EmbeddedServer(data, port=free_port(), settings=dict(primary.settings))
    standby.start()
    return standby


def test_saturation_cold_cache_standby_lag_and_no_pg_stat_statements(small_db):
    small_db.execute("CREATE EXTENSION pg_stat_statements")  # installed, but the server never loaded it
    small_db.execute("CREATE TABLE cold AS SELECT g, repeat(md5(g::text), 4) AS pad FROM generate_series(1, 40000) g")
    for _ in range(4):  # bigger than a quarter of shared_buffers: every scan reads from disk
        small_db.execute("SELECT count(*) FROM cold")
    standby = _standby(small_db.server, small_db.server.data_dir.parent)
    try:
        with Faults(small_db.conninfo) as f:
            f.wait_for("SELECT count(*) = 1 FROM pg_stat_replication WHERE state = 'streaming'")
            with psycopg.connect(standby.conninfo(), autocommit=True) as s:
                s.execute("SELECT pg_wal_replay_pause()")
            small_db.execute("CREATE TABLE lag_me AS SELECT g, md5(g::text) FROM generate_series(1, 50000) g")
            idle_sessions(f, 14)  # with the runbook's own session: 15 of 17 usable (20 - 3 reserved) = 88%
            sidecar = run(small_db, {"thresholds": {"cache.hit_ratio": {"min_blocks": 1000},
                                                    "replication.lag": {"warning": 600, "critical": 1200,
                                                                        "warning_bytes": 1e6}}})
    finally:
        standby.destroy()
    sat = about(sidecar, "connections.saturation")[0]
    assert sat["severity"] == "warning" and 80 <= sat["value"] < 95 and "/17" in sat["title"]
    tables, indexes = about(sidecar, "cache.hit_ratio")
    assert (tables["severity"], indexes["severity"]) == ("critical", "ok") and tables["value"] < 94
    lag = about(sidecar, "replication.lag")
    assert [f["severity"] for f in lag] == ["warning"] and lag[0]["value"] > 1e6
    pgss = about(sidecar, "queries.slow")[0]
    assert pgss["severity"] == "info" and "shared_preload_libraries" in pgss["remediation"]
    assert sidecar["metrics"]["connections_used"] == 15 and sidecar["metrics"]["cache_hit_pct"] < 94


def test_every_fault_is_found_with_the_right_id_and_severity(any_db, request):
    """One runbook run over many faults at once; thresholds lowered through the parameters so they trip fast.

    On the embedded server the run confirms the listed terminations; on PostgreSQL 15 it lists the same pids
    without confirm, and nothing may change.
    """
    db, confirm = any_db, request.node.callspec.params["any_pg"] == "embedded"
    db.execute("CREATE SCHEMA extensions")
    db.execute("CREATE EXTENSION pg_stat_statements SCHEMA extensions")
    db.execute("CREATE TABLE listings (scraped_at timestamptz)")
    db.execute("INSERT INTO listings VALUES (now() - interval '5 hours')")
    db.execute("CREATE TABLE jobs (finished_at timestamptz)")
    db.execute("INSERT INTO jobs VALUES (now() - interval '4 hours')")
    age = db.execute("SELECT age(datfrozenxid) FROM pg_database WHERE datname = current_database()")[0][0]
    burn_xids(db.conninfo, 3000)
    with Faults(db.conninfo) as f:
        dl = deadlock(f)
        temp_file_sort(db.conninfo)
        slow_statements(db.conninfo, calls=25, rows=50_000)
        slot = inactive_slot(f)
        chain, adv = blocking_chain(f), advisory_wait(f)
        tx, sleeper = idle_in_transaction(f), long_running(f, 900)  # outlives a slow kernel on a busy machine
        idle = idle_sessions(f, 3)
        f.wait_for("SELECT now() - query_start > interval '1.2 seconds' FROM pg_stat_activity WHERE pid = %s",
                   (sleeper,))
        thresholds = {"locks.blocking": {"critical_wait_s": 3600},  # grade by the number blocked, not the clock
                      "activity.long_running": {"warning": 1, "critical": 600},
                      "activity.idle_in_transaction": {"warning": 1, "critical": 600},
                      "connections.idle": {"idle_s": 1, "warning": 5, "critical": 95},
                      "queries.slow": {"warning": 0.5, "critical": 10_000, "min_calls": 20},
                      "storage.temp_files": {"warning": 1_000_000},
                      "wraparound.xid_age": {"warning": 100 * (age + 1500) / XID_SPACE, "critical": 50}}
        sidecar = run(db, {"thresholds": thresholds, "terminate_pids": [chain["root"], tx], "cancel_pids": [sleeper],
                           "confirm": confirm,
                           "freshness": {"public.jobs": {"column": "finished_at", "max_age_hours": 1}}},
                      freshness={"public.listings": {"column": "scraped_at", "max_age_hours": 4}})
        still = alive(db.conninfo, [*chain.values(), *adv.values(), tx, sleeper, *idle])
        sleeper_error = f.errors.get(sleeper)

    pid = "pid {}".format
    assert severity_of(sidecar, "locks.blocking", pid(chain["root"])) == "critical"
    root = about(sidecar, "locks.blocking", pid(chain["root"]))[0]
    assert root["value"] == 5 and "3 levels deep" in root["title"] and "idle in transaction" in root["title"]
    assert root["objects"] == [pid(chain["root"]), "public.chain_a", "public.chain_b"]
    assert severity_of(sidecar, "locks.blocking", pid(adv["holder"])) == "warning"
    assert "advisory key 4711" in about(sidecar, "locks.blocking", pid(adv["holder"]))[0]["objects"]
    assert severity_of(sidecar, "activity.idle_in_transaction", pid(chain["root"])) == "critical"
    assert severity_of(sidecar, "activity.idle_in_transaction", pid(tx)) == "warning"
    assert severity_of(sidecar, "activity.long_running", pid(sleeper)) == "warning"
    assert severity_of(sidecar, "connections.idle") == "warning"
    assert {pid(p) for p in idle} <= set(about(sidecar, "connections.idle")[0]["objects"])
    assert severity_of(sidecar, "locks.deadlocks", db.name) == "warning" and "deadlock" in str(dl)
    assert severity_of(sidecar, "storage.temp_files", db.name) == "warning"
    assert severity_of(sidecar, "replication.slots", slot) == "warning"
    assert about(sidecar, "replication.slots", slot)[0]["value"] > 1_000_000
    assert severity_of(sidecar, "wraparound.xid_age", db.name) == "warning"
    slow = [f for f in about(sidecar, "queries.slow") if f["severity"] == "warning"]
    assert any("slow_t" in f["detail"] and "25 calls" in f["title"] for f in slow)
    assert severity_of(sidecar, "app.freshness", "public.listings.scraped_at") == "warning"
    assert severity_of(sidecar, "app.freshness", "public.jobs.finished_at") == "critical"

    m = sidecar["metrics"]
    assert m["incident_priority"] == 1 and m["blocked_sessions"] >= 6 and m["longest_transaction_s"] > 1
    assert m["connections_used"] >= 14 and m["connections_max"] == 60 and m["xid_age_max"] >= age + 3000
    results = {f["objects"][0]: f for f in about(sidecar, "remediation.backends")}
    everyone = {*chain.values(), *adv.values(), tx, sleeper, *idle}
    if confirm:
        assert still == everyone - {chain["root"], tx}  # exactly the listed pids, and no other
        assert isinstance(sleeper_error, psycopg.errors.QueryCanceled)
        assert all("signal sent" in results[pid(p)]["title"] for p in (chain["root"], tx, sleeper))
        assert (m["backends_terminated"], m["backends_cancelled"]) == (2, 1)
    else:
        assert still == everyone and sleeper_error is None
        assert all("confirm is False" in results[pid(p)]["title"] for p in (chain["root"], tx, sleeper))
        assert (m["backends_terminated"], m["backends_cancelled"]) == (0, 0)


def test_a_role_without_pg_read_all_stats_gets_info_findings_saying_what_it_could_not_see(db):
    db.execute("CREATE EXTENSION pg_stat_statements")
    slow_statements(db.conninfo, calls=3, rows=1000)
    db.execute("DROP ROLE IF EXISTS ob_low")
    db.execute("CREATE ROLE ob_low LOGIN")
    try:
        with Faults(db.conninfo) as f:
            sleeper = long_running(f)
            result = run_runbook("incident-triage", "low", {}, output_dir=db.server.data_dir.parent / "reports",
                                 config=_config(db.server.conninfo(dbname=db.name, user="ob_low"), name="low"))
    finally:
        db.execute("DROP OWNED BY ob_low")
        db.execute("DROP ROLE ob_low")
    s = result.sidecar
    assert result.exit_code == 0 and s["status"] == "ok", s["error"]
    hidden = {f["check"]: f for f in s["findings"] if f.get("skipped")}
    # every check that looks at sessions says it could not see the other role's (the sleeper could be idle)
    assert set(hidden) == {"activity.long_running", "queries.slow", "activity.idle_in_transaction", "connections.idle"}
    assert all(f["severity"] == "info" and "pg_read_all_stats" in f["remediation"] for f in hidden.values())
    assert not any(f"pid {sleeper}" in f["objects"] for f in s["findings"])  # it cannot be judged, only counted
    assert worst(s) == set() and s["metrics"]["connections_used"] >= 2  # hidden sessions still count


def test_nothing_listening_and_a_wrong_password_are_p0_with_their_next_steps(pg, db, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
        refused = run_runbook("incident-triage", "down", {}, output_dir=db.server.data_dir.parent / "reports",
                              config=_config(f"host=127.0.0.1 port={s.getsockname()[1]} user=app dbname=app"))
    db.execute("DROP ROLE IF EXISTS ob_app")
    db.execute("CREATE ROLE ob_app LOGIN PASSWORD 'the-right-one'")
    monkeypatch.setenv("PGPASSWORD", "not-the-right-one-4711")
    try:
        denied = run_runbook("incident-triage", "down", {}, output_dir=db.server.data_dir.parent / "reports",
                             config=_config(f"host=127.0.0.1 port={pg.configured_port()} user=ob_app "
                                            f"dbname={db.name}"))
    finally:
        db.execute("DROP ROLE ob_app")
    for result, kind in ((refused, "refused"), (denied, "auth")):
        s = result.sidecar
        assert result.exit_code == 0 and s["status"] == "ok"
        [f] = s["findings"]
        assert (f["check"], f["severity"], f["value"]) == ("connectivity.unreachable", "critical", kind)
        assert s["metrics"] == {"incident_priority": 0}
        text = result.html_path.read_text()
        assert "P0 Critical" in text and "status.supabase.com" in text
        assert "not-the-right-one-4711" not in text + str(s)


def _config(dsn: str, name: str = "down"):
    from opsbook.config.file import from_dict

    return from_dict({"targets": {name: {"dsn": dsn}}})


def test_the_demo_report_is_short(demo_database, tmp_path):
    """Against the demo database, the verdict is the first thing in the report, and the report stays small."""
    result = run_runbook("incident-triage", "demo", {}, output_dir=tmp_path)
    assert result.exit_code == 0, result.sidecar["error"]
    html = result.html_path.read_text()
    verdict = html.index("ob-verdict\" style")
    assert verdict < html.index("Can we reach the database?")
    assert html.index("Next actions") < html.index("Can we reach the database?")
    assert result.html_path.stat().st_size < 1_000_000
