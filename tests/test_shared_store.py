"""The history store on PostgreSQL, shared by many writers: concurrent schema creation, concurrent snapshots of
different targets from separate processes, and readers that answer as they do on SQLite."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from conftest import drop_database, make_database
from opsbook.config.file import from_dict

OPSBOOK = Path(sys.executable).parent / "opsbook"


@pytest.fixture
def pg_store(pg):
    """An empty database on the embedded server to hold the history, as a team's shared store would."""
    d = make_database(pg)
    url = f"postgresql+psycopg://postgres@/{d.name}?host={pg.data_dir}&port={pg.configured_port()}"
    yield url, d
    drop_database(d)


def test_two_processes_creating_the_schema_at_once(pg_store, tmp_path):
    url, _ = pg_store
    code = ("import sys; from opsbook.history.readers import HistoryStore; "
            "from opsbook.schedule.jobs import JobStore; s = HistoryStore(sys.argv[1]); print(s.version); "
            "JobStore(sys.argv[1]).close(); s.close()")
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [e for _, e in outs]
    assert len({o.strip() for o, _ in outs}) == 1  # every one sees the same schema version


def test_concurrent_snapshots_of_different_targets(pg, pg_store, tmp_path):
    url, _ = pg_store
    dbs = [make_database(pg) for _ in range(3)]
    try:
        for d in dbs:
            d.execute("CREATE TABLE t (id bigint PRIMARY KEY, v text); INSERT INTO t SELECT g, 'x' FROM "
                      "generate_series(1, 1000) g")
        cfg = tmp_path / "opsbook.toml"
        cfg.write_text("".join(f"[targets.t{i}]\ndsn = {json.dumps(d.conninfo)}\n" for i, d in enumerate(dbs))
                       + f"[history]\nurl = {json.dumps(url)}\n")
        env = {**os.environ, "OPSBOOK_CONFIG": str(cfg)}
        for _round in range(2):  # the first round creates every entity at once, the second writes only changes
            procs = [subprocess.Popen([str(OPSBOOK), "snapshot", "--target", f"t{i}"], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(3)]
            outs = [p.communicate(timeout=180) for p in procs]
            assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outs]
        from opsbook.history import open_store

        store = open_store(from_dict({"history": {"url": url}}))
        try:
            assert store.targets() == ["t0", "t1", "t2"]
            for i in range(3):
                assert len(store.snapshots(f"t{i}")) == 2
                assert len(store.series(f"t{i}", "database_size_bytes")) == 2
        finally:
            store.close()
    finally:
        for d in dbs:
            drop_database(d)


def test_readers_answer_the_same_on_sqlite_and_postgresql(db, pg_store, tmp_path):
    """The same snapshots (same moments, same database) into both stores; every reader the runbooks use agrees."""
    from opsbook.database.session import connect
    from opsbook.history import open_store
    from opsbook.history import snapshot as snap
    from opsbook.history import store as st

    url, _ = pg_store
    sqlite = f"sqlite:///{tmp_path / 'history.sqlite'}"
    configs = [from_dict({"targets": {"test": {"dsn": db.conninfo}}, "history": {"url": u}}) for u in (sqlite, url)]
    stores = [open_store(c) for c in configs]
    db.execute("CREATE TABLE t (id bigint PRIMARY KEY, v text)")
    t0 = 1_790_000_000.0
    for day in range(4):
        db.execute(f"INSERT INTO t SELECT g, repeat('x', 50) FROM generate_series({day * 5000 + 1}, "
                   f"{(day + 1) * 5000}) g")
        with connect(configs[0].target("test")) as session:  # one capture, written into both stores
            cap = snap.capture(session, as_of=t0 + day * 86400, heavy=True, known_queryids=set())
        meta = {"target": "test", "ts": cap.ts, "captured_at": cap.ts, "simulated": True,
                "server_version_num": cap.server_version_num, "stats_reset": cap.stats_reset,
                "postmaster_start": cap.postmaster_start, "server_ms": cap.server_ms, "parts": ",".join(cap.parts)}
        groups = {"metric": cap.metrics, "statement": cap.statements,
                  "table": [r for r in cap.relations if r["_kind"] == "table"],
                  "index": [r for r in cap.relations if r["_kind"] == "index"]}
        for s in stores:
            st.write_snapshot(s.engine, dict(meta), groups, cap.metric_scope())
    try:
        a, b = stores
        for metric in ("database_size_bytes", "connections_total", "tables_count"):
            pd.testing.assert_frame_equal(a.series("test", metric), b.series("test", metric), check_dtype=False)
        pd.testing.assert_frame_equal(a.rates("test", "xact_commit"), b.rates("test", "xact_commit"),
                                      check_dtype=False)
        ga, gb = a.table_growth("test"), b.table_growth("test")
        pd.testing.assert_frame_equal(ga.reset_index(drop=True), gb.reset_index(drop=True), check_dtype=False)
        assert len(a.snapshots("test")) == len(b.snapshots("test")) == 4
    finally:
        for s in stores:
            s.close()
