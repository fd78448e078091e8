"""A real hot standby (pg_basebackup -R, streaming): every report says the target is in recovery, and
capacity-planning prescribes nothing that cannot run there (issue 21, defect 2), while the primary keeps its advice."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from conftest import Database, _server, drop_database, make_database
import deployments
from deployments import _one, make_standby
from deployments import wait_for as _wait
from opsbook.run.runner import run_runbook, runbook_names

pytestmark = pytest.mark.slow

NO_RECOVERY = re.compile(r"\b(ANALYZE|VACUUM|DROP INDEX|REINDEX|CREATE INDEX|ALTER (TABLE|SEQUENCE))\b")
SEED = """
CREATE TABLE public.orders (id bigint PRIMARY KEY, customer int NOT NULL, note text)
    WITH (autovacuum_enabled = off);
INSERT INTO public.orders SELECT g, g, md5(g::text) FROM generate_series(1, 100000) g;
CREATE INDEX orders_customer ON public.orders (customer);
CREATE INDEX orders_note ON public.orders (note);
CREATE INDEX orders_note_twin ON public.orders (note);
CREATE TABLE public.order_lines (order_id bigint REFERENCES public.orders (id), qty int);
CREATE TABLE public.customers AS SELECT g AS id, md5(g::text) AS name FROM generate_series(1, 5000) g;
ANALYZE public.customers;
"""


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(primary database, the same database on its hot standby), a table with indexes replayed on both; the
    primary scanned one index 40 times, which the standby's own counters never see."""
    primary = _server(tmp_path_factory, "standby-primary", wal_level="replica", max_wal_senders="4", hot_standby="on")
    db = make_database(primary)
    standby = make_standby(primary)
    try:
        db.execute(SEED)
        with db.connect() as c:
            c.execute("SET enable_seqscan = off")
            for k in range(40):
                c.execute("SELECT count(*) FROM public.orders WHERE customer = %s", (k,))
        _wait("the primary's index scans counted", lambda: _one(
            db.conninfo, "SELECT idx_scan >= 40 FROM pg_stat_user_indexes WHERE indexrelname = 'orders_customer'"))
        lsn = _one(db.conninfo, "SELECT pg_current_wal_insert_lsn()::text")
        mirror = Database(standby, db.name)
        _wait("the standby to replay the seeded tables", lambda: _one(
            mirror.conninfo, f"SELECT pg_is_in_recovery() AND pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"))
        yield db, mirror
    finally:
        standby.destroy()
        drop_database(db)
        primary.destroy()
        shutil.rmtree(primary.data_dir.parent, ignore_errors=True)


def _run(db: Database, tmp_path: Path):
    result = run_runbook("capacity-planning", "test", config=db.config(), output_dir=tmp_path / "reports")
    assert result.exit_code == 0 and result.sidecar["status"] == "ok", result.sidecar.get("error")
    return result


def _of(result, check):
    return [f for f in result.sidecar["findings"] if f["check"] == check]


def test_capacity_planning_on_a_standby_prescribes_nothing_that_needs_the_primary(pair, tmp_path):
    _, standby = pair
    result = _run(standby, tmp_path)
    impossible = [(f["check"], f["remediation"]) for f in result.sidecar["findings"]
                  if NO_RECOVERY.search(f.get("remediation") or "")]
    assert impossible == []
    assert result.sidecar["metrics"]["in_recovery"] is True
    page = result.html_path.read_text()
    assert "standby (in recovery)" in page
    port = str(pair[0].server.configured_port())
    stale = _of(result, "vacuum.stale_stats")
    assert [f["severity"] for f in stale] == ["info"] and "primary" in stale[0]["remediation"]
    assert stale[0]["skipped"] and port in stale[0]["remediation"]  # the verdict says incomplete, names the primary
    unused = {f["objects"][0]: f for f in _of(result, "indexes.unused") if f["objects"]}
    assert {"public.orders_customer", "public.orders_note"} <= set(unused)  # 0 scans here: the standby's own count
    for f in unused.values():
        assert f["severity"] == "info" and "this standby's own" in f["detail"] and port in f["remediation"]
    assert _of(result, "vacuum.dead_tuples")[0]["severity"] == "info"
    # facts of the replicated catalogue stay, their statement moved to the detail, to be run on the primary
    [twin] = _of(result, "indexes.duplicate")
    assert port in twin["remediation"] and "DROP INDEX CONCURRENTLY public.orders_note" in twin["detail"]
    [fk] = _of(result, "indexes.unindexed_fk")
    assert port in fk["remediation"] and "CREATE INDEX CONCURRENTLY ON public.order_lines" in fk["detail"]


def test_the_same_run_on_the_primary_keeps_its_advice(pair, tmp_path):
    primary, _ = pair
    result = _run(primary, tmp_path)
    assert result.sidecar["metrics"]["in_recovery"] is False
    assert "primary (not in recovery)" in result.html_path.read_text()
    stale = _of(result, "vacuum.stale_stats")
    assert stale[0]["severity"] == "warning" and "ANALYZE public.orders;" in stale[0]["remediation"]
    assert "public.customers" not in stale[0]["objects"]  # analyzed on the primary; the standby cannot tell
    unused = {f["objects"][0]: f for f in _of(result, "indexes.unused") if f["objects"]}
    assert "DROP INDEX CONCURRENTLY public.orders_note;" in unused["public.orders_note"]["remediation"]
    assert "public.orders_customer" not in unused  # scanned 40 times on the primary
    assert "DROP INDEX CONCURRENTLY public.orders_note" in _of(result, "indexes.duplicate")[0]["remediation"]
    assert _of(result, "indexes.unindexed_fk")[0]["remediation"].startswith("CREATE INDEX CONCURRENTLY")


def test_every_runbook_header_says_standby_or_primary():
    from opsbook.report.html import Header, header_html

    base = dict(runbook="incident-triage", target="t", target_display="t", status="ok",
                started_at="2026-01-01T00:00:00Z", duration_s=1.0, server_version="18.1", role="opsbook", superuser=False)
    standby = header_html(Header(**base, in_recovery=True, primary="the primary (10.0.0.5:5432)"), Path("r/x.html"),
                          Path("r"))
    assert "standby (in recovery)" in standby and "10.0.0.5:5432" in standby and ">role<" in standby
    assert "primary (not in recovery)" in header_html(Header(**base, in_recovery=False), Path("r/x.html"), Path("r"))
    assert "in recovery" not in header_html(Header(**base), Path("r/x.html"), Path("r"))  # never connected


# ------------------------------------------------------------------ every runbook's advice, run on the standby
STATEMENT = re.compile(r"\b(?:SELECT|ALTER|VACUUM|ANALYZE|CREATE|DROP|REINDEX|TRUNCATE|CLUSTER|GRANT|REVOKE|DELETE|"
                       r"INSERT|UPDATE|COMMENT|SET|RESET|REFRESH)\b[^;]*;")
WRITES = re.compile(r"(?<!EXPLAIN \()\bANALYZE\b|\b(VACUUM|REINDEX|CLUSTER|TRUNCATE|DELETE|INSERT|GRANT|REVOKE|ALTER|"
                    r"CREATE|DROP|pg_repack|apply=True)\b|\b[Dd]elete\b|\b[Aa]rchive\b|\b[Dd]rop\b")
SIGNALS = re.compile(r"pg_(terminate|cancel)_backend")
IDLE_HOLDERS = 3


def proposed(remediation: str) -> list[str]:
    """The SQL statements a remediation spells out in full (placeholders such as ... or <role> are not runnable)."""
    return [s for s in (m.group(0) for m in STATEMENT.finditer(remediation or ""))
            if "..." not in s and "<" not in s]


@pytest.fixture(scope="module")
def advised(pair, tmp_path_factory):
    """Every runbook run on the standby with faults that make the checks advise: sessions idle on the standby,
    temporary files written there by a sort past a small work_mem, a database over a lowered share of the plan's
    size, rows deleted on the primary since a backup. {runbook: sidecar}."""
    primary, standby = pair
    tmp = tmp_path_factory.mktemp("standby-advice")
    backup = tmp / "orders.dump"
    out = subprocess.run([str(deployments.embedded_bindir() / "pg_dump"), "-Fc", "-f", str(backup), "-d",
                          primary.conninfo], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    primary.execute("DELETE FROM public.orders WHERE id <= 5")
    lsn = _one(primary.conninfo, "SELECT pg_current_wal_insert_lsn()::text")
    _wait("the standby to replay the delete", lambda: _one(
        standby.conninfo, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"))
    idle = [psycopg.connect(standby.conninfo, autocommit=True, application_name="parked")
            for _ in range(IDLE_HOLDERS)]
    try:
        for c in idle:
            c.execute("SELECT 1")
        with psycopg.connect(standby.conninfo, autocommit=True) as c:  # spills on the standby: its own counters
            c.execute("SET work_mem = '64kB'")
            c.execute("SELECT count(*) FROM (SELECT md5(note) FROM public.orders ORDER BY 1 OFFSET 1) s")
        _wait("the standby's temp files counted", lambda: _one(
            standby.conninfo, "SELECT temp_bytes > 0 FROM pg_stat_database WHERE datname = current_database()"))
        thresholds = {"connections.idle": {"idle_s": 0, "warning": 0.001, "critical": 0.002},
                      "storage.temp_files": {"warning": 1, "critical": 2},
                      "storage.database_size": {"warning": 0.001, "critical": 0.002}}
        config = standby.config(plan="free", thresholds=thresholds)
        params = {"backup-verification": {"take_backup": True},
                  "table-recovery": {"backup": str(backup), "table": "public.orders"},
                  "post-mortem": {"incident_start": "now-10m", "log_path": str(standby.server.log_file)}}
        runs = {}
        for name in runbook_names():
            result = run_runbook(name, "test", params.get(name, {}), config=config, output_dir=tmp / "reports")
            assert result.sidecar["status"] == "ok", (name, result.sidecar.get("error"))
            runs[name] = result.sidecar
        yield runs
    finally:
        for c in idle:
            c.close()


def test_the_faults_make_the_standby_runs_advise(pair, advised):
    """The advice is there, placed: what works on the standby stays runnable, the rest names the primary."""
    port = str(pair[0].server.configured_port())
    by_check = {f["check"]: f for sidecar in advised.values() for f in sidecar["findings"]}
    for check in ("connections.idle", "storage.temp_files", "storage.database_size", "recovery.missing_rows"):
        assert by_check[check]["severity"] in ("warning", "critical") and by_check[check]["remediation"], check
    idle = by_check["connections.idle"]["remediation"]
    assert idle.startswith("SELECT pg_terminate_backend(pid)") and port in idle  # the sessions are the standby's own
    temp = by_check["storage.temp_files"]
    assert port in temp["remediation"] and "ALTER ROLE app SET work_mem" in temp["detail"]
    assert "its own spills" in temp["detail"]
    size = by_check["storage.database_size"]
    assert port in size["remediation"] and "VACUUM FULL" in size["detail"]
    assert port in by_check["recovery.missing_rows"]["remediation"]
    slow = by_check["queries.slow"]
    assert slow["skipped"] and port in slow["remediation"] and "CREATE EXTENSION" in slow["remediation"]


def test_no_report_on_a_standby_proposes_what_cannot_run_there(pair, advised):
    """Each statement a remediation spells out is executed on the standby (where nothing can be written, so it
    changes nothing): none may fail for being in recovery. Advice that writes is named for the primary instead."""
    primary, standby = pair
    port = str(primary.server.configured_port())
    advice, refused, unplaced = 0, [], []
    with psycopg.connect(standby.conninfo, autocommit=True) as c:
        c.execute("SET statement_timeout = '10s'")
        for runbook, sidecar in advised.items():
            for f in sidecar["findings"]:
                text = f.get("remediation") or ""
                advice += bool(text) and f["severity"] in ("warning", "critical")
                if WRITES.search(SIGNALS.sub("", text)) and port not in text:
                    unplaced.append((runbook, f["check"], text))
                for sql in proposed(text):
                    if SIGNALS.search(sql):
                        continue  # never signal a real backend here; that they work on a standby is proven below
                    try:
                        c.execute(sql)
                    except psycopg.errors.ReadOnlySqlTransaction as e:
                        refused.append((runbook, f["check"], sql, str(e).splitlines()[0]))
                    except psycopg.Error:
                        pass  # a statement of another kind of failure is not this test's concern
    assert advice and (refused, unplaced) == ([], []), "\n".join(map(repr, refused + unplaced))


def test_cancel_and_terminate_work_on_a_standby(pair):
    """What connections.idle and activity.* keep proposing on a standby: signalling its own backends works there."""
    _, standby = pair
    with psycopg.connect(standby.conninfo, autocommit=True) as victim, \
            psycopg.connect(standby.conninfo, autocommit=True) as c:
        pid = victim.info.backend_pid
        assert c.execute("SELECT pg_cancel_backend(%s)", (pid,)).fetchone()[0] is True
        assert c.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()[0] is True
        assert c.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] == 0
        assert c.execute("SELECT pg_reload_conf()").fetchone()[0] is True
