"""What one `opsbook watch` sample costs: server time (pg_stat_statements) and round trip, and bytes stored,
on the demo database and on a database with 10,000 tables.

    .venv/bin/python benchmarks/sample_cost.py [--samples 200] [--tables 10000] [--demo-dsn DSN] [--skip-demo]

The demo: --demo-dsn points at an existing demo database (e.g. the one `opsbook demo` built: host=<its data dir>
port=... dbname=demo user=postgres), else one is built on the scratch server (minutes). The N-table database is
built on a scratch embedded server (benchmarks/many_tables.py). Each database gets --samples samples into a fresh
SQLite store; the store's growth per sample gives kB/day at one sample every 10 s.
Writes benchmarks/results/sample-cost-<UTC date>.json and prints a table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from many_tables import many_tables

HERE = Path(__file__).resolve().parent
SAMPLE_MARK = "json_object_agg(state, n)"  # a fragment of sql/watch/sample.sql (its comment is not kept)


def pss_schema(c) -> str:
    return c.execute("SELECT extnamespace::regnamespace::text FROM pg_extension "
                     "WHERE extname = 'pg_stat_statements'").fetchone()[0]


def server_ms(conninfo: str) -> tuple[float | None, int]:
    with psycopg.connect(conninfo, autocommit=True) as c:
        row = c.execute(f"SELECT mean_exec_time, calls FROM {pss_schema(c)}.pg_stat_statements WHERE query LIKE %s "
                        "ORDER BY calls DESC LIMIT 1", (f"%{SAMPLE_MARK}%",)).fetchone()
    return (float(row[0]), int(row[1])) if row else (None, 0)


def measure(name: str, conninfo: str, folder: Path, n: int) -> dict:
    from opsbook.config.file import from_dict
    from opsbook.database.session import connect
    from opsbook.history import open_store
    from opsbook.history.store import store_bytes
    from opsbook.incident.watch import take_sample, write_sample
    from opsbook.incident.watch.store import ensure_table

    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        c.execute(f"SELECT {pss_schema(c)}.pg_stat_statements_reset()")
    config = from_dict({"targets": {"bench": {"dsn": conninfo}},
                        "history": {"url": f"sqlite:///{folder / (name + '.sqlite')}"}})
    store = open_store(config)
    ensure_table(store.engine)
    db = connect(config.target("bench"))
    try:
        write_sample(store.engine, {**take_sample(db), "target": "bench"})  # warm: plan cache, catalog cache
        before = store_bytes(store.engine)
        trips = []
        for _ in range(n):
            row = take_sample(db)
            trips.append(row["server_ms"])
            write_sample(store.engine, {**row, "target": "bench"})
        after = store_bytes(store.engine)
    finally:
        db.close()
        store.close()
    mean_ms, calls = server_ms(conninfo)
    per_sample = (after - before) / n
    return {"database": name, "samples": n, "server_ms_mean": round(mean_ms, 3) if mean_ms else None,
            "server_calls": calls, "round_trip_ms_median": round(statistics.median(trips), 3),
            "round_trip_ms_p95": round(sorted(trips)[int(0.95 * (n - 1))], 3),
            "bytes_per_sample": round(per_sample, 1), "kb_per_day_at_10s": round(per_sample * 8640 / 1024, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--tables", type=int, default=10_000)
    ap.add_argument("--demo-dsn", help="An existing demo database (skips building one).")
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args(argv)

    from opsbook.database.embedded import EmbeddedServer

    rows = []
    with tempfile.TemporaryDirectory(prefix="opsbook-sample-bench-") as tmp:
        server = EmbeddedServer(Path(tmp) / "data", settings={"fsync": "off", "max_locks_per_transaction": "1024"})
        server.start()
        try:
            if args.demo_dsn:
                rows.append(measure("demo", args.demo_dsn, Path(tmp), args.samples))
            elif not args.skip_demo:
                from opsbook.demo import ensure_demo_database

                ensure_demo_database(server=server)
                rows.append(measure("demo", server.conninfo(dbname="demo"), Path(tmp), args.samples))
            t0 = time.perf_counter()
            name = many_tables(server, args.tables)
            print(f"{args.tables:,} tables built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            rows.append({**measure(name, server.conninfo(dbname=name), Path(tmp), args.samples),
                         "tables": args.tables})
        finally:
            server.stop()
    out = HERE / "results" / f"sample-cost-{dt.datetime.now(dt.timezone.utc):%Y-%m-%d}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": rows}, indent=1))
    print(f"{'database':<12} {'server ms':>9} {'round trip ms':>13} {'p95':>6} {'bytes/sample':>12} {'kB/day @10s':>11}")
    for r in rows:
        print(f"{r['database']:<12} {r['server_ms_mean'] or 0:>9.2f} {r['round_trip_ms_median']:>13.2f} "
              f"{r['round_trip_ms_p95']:>6.1f} {r['bytes_per_sample']:>12.0f} {r['kb_per_day_at_10s']:>11.0f}")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
