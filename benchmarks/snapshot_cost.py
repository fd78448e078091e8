"""What one `opsbook snapshot` costs: server time, wall time and bytes stored, on the demo and on 10,000 tables.

    .venv/bin/python benchmarks/snapshot_cost.py [--tables 10000] [--snapshots 5] [--skip-demo]

Runs on a scratch embedded server in a temporary folder (never the demo server you use), builds the demo database
there and a database with N tables (each with a primary key and one more index: 3N relations), then takes a first
snapshot (everything is new: the full cost) and further snapshots after touching 1% of the tables (the steady
state of a cron job). Stores into SQLite. Writes benchmarks/results/snapshot-cost-<UTC date>.json and prints a table.
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


def touch(server, dbname: str, sql: str) -> None:
    with psycopg.connect(server.conninfo(dbname=dbname), autocommit=True) as c:
        c.execute(sql + ";SELECT pg_stat_force_next_flush()")


def measure(server, dbname: str, folder: Path, snapshots: int, touch_sql: str | None = None) -> dict:
    from opsbook import history
    from opsbook.config.file import from_dict

    store_path = folder / f"{dbname}.sqlite"
    config = from_dict({"targets": {"bench": {"dsn": server.conninfo(dbname=dbname)}},
                        "history": {"url": f"sqlite:///{store_path}"}})
    store = history.open_store(config)
    runs = []
    for i in range(snapshots):
        if i and touch_sql:
            touch(server, dbname, touch_sql)
        r = history.take_snapshot(config, "bench", store=store, heavy=True, budget_ms=120_000)
        runs.append(r)
    store.close()
    first, rest = runs[0], runs[1:]
    return {
        "database": dbname,
        "first": {"server_ms": round(first.server_ms, 1), "client_ms": round(first.client_ms, 1),
                  "rows": first.rows_written, "stored_bytes": first.stored_bytes,
                  "query_ms": {k: round(v, 1) for k, v in first.query_ms.items()}},
        "steady": {"server_ms_median": round(statistics.median(r.server_ms for r in rest), 1) if rest else None,
                   "client_ms_median": round(statistics.median(r.client_ms for r in rest), 1) if rest else None,
                   "rows_median": statistics.median(r.rows_written for r in rest) if rest else None,
                   "stored_bytes_median": statistics.median(r.stored_bytes or 0 for r in rest) if rest else None},
        "store_file_bytes": store_path.stat().st_size,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=10_000)
    ap.add_argument("--snapshots", type=int, default=5)
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args(argv)

    from opsbook.database.embedded import EmbeddedServer

    results = {"measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "databases": []}
    with tempfile.TemporaryDirectory(prefix="opsbook-bench-") as tmp:
        server = EmbeddedServer(Path(tmp) / "data", settings={"fsync": "off", "max_locks_per_transaction": "1024"})
        server.start()
        try:
            if not args.skip_demo:
                from opsbook.demo import ensure_demo_database

                t0 = time.perf_counter()
                ensure_demo_database(server=server)
                print(f"demo database built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
                work = ("UPDATE public.leads SET updated_at = now() WHERE id IN (SELECT id FROM public.leads LIMIT 200);"
                        "UPDATE public.vehicle_listings SET updated_at = now() WHERE id IN "
                        "(SELECT id FROM public.vehicle_listings LIMIT 500)")
                results["databases"].append(measure(server, "demo", Path(tmp), args.snapshots, work))
            t0 = time.perf_counter()
            name = many_tables(server, args.tables)
            print(f"{args.tables:,} tables built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            work = "".join(f"INSERT INTO t{i} (id, v) SELECT max(id) + 1, 0 FROM t{i};"  # 1% of the tables change
                           for i in range(0, args.tables, 100))
            m = measure(server, name, Path(tmp), args.snapshots, work)
            m["tables"] = args.tables
            results["databases"].append(m)
        finally:
            server.stop()
    out = HERE / "results" / f"snapshot-cost-{dt.date.today().isoformat()}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"{'database':<12} {'first: server ms':>16} {'wall ms':>8} {'rows':>7} {'bytes':>10} | "
          f"{'steady: server ms':>17} {'wall ms':>8} {'rows':>6} {'bytes':>8}")
    for d in results["databases"]:
        f, s = d["first"], d["steady"]
        print(f"{d['database']:<12} {f['server_ms']:>16,.0f} {f['client_ms']:>8,.0f} {f['rows']:>7,} "
              f"{f['stored_bytes'] or 0:>10,} | {s['server_ms_median'] or 0:>17,.0f} {s['client_ms_median'] or 0:>8,.0f} "
              f"{s['rows_median'] or 0:>6,.0f} {s['stored_bytes_median'] or 0:>8,.0f}")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
