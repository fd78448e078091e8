"""Server time of incident-triage's own queries, on the demo database and on a database with 10,000 tables.

    .venv/bin/python benchmarks/incident_server_time.py [--tables 10000] [--repeat 3] [--skip-demo]

Runs on a scratch embedded server in a temporary folder (never the demo server you use), with pg_stat_statements
tracking planning too. The runbook runs through the runner as a role of its own (opsbook_bench, member of
pg_monitor and pg_read_all_data like a hosted read-only ops role); before each run that role's pg_stat_statements
entries are reset, after it their plan + execution time is summed: the database work the runbook costs, without
the kernel and the export.
Writes benchmarks/results/incident-server-time-<UTC date>.json and prints a table.
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
ROLE = "opsbook_bench"
SETTINGS = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track_planning": "on",
            "max_connections": "60", "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def server_time(server, dbname: str, params: dict, repeat: int, out: Path) -> dict:
    """Run the runbook `repeat` times as ROLE; per run, the summed plan + execution time of its statements."""
    from opsbook.config.file import from_dict
    from opsbook.run.runner import run_runbook

    config = from_dict({"targets": {"bench": {"dsn": server.conninfo(dbname=dbname, user=ROLE)}}})
    runs, last = [], None
    with psycopg.connect(server.conninfo(dbname=dbname), autocommit=True) as c:
        schema = c.execute("SELECT extnamespace::regnamespace::text FROM pg_extension "
                           "WHERE extname = 'pg_stat_statements'").fetchone()[0]  # the demo keeps it in `extensions`
    for _ in range(repeat):
        with psycopg.connect(server.conninfo(dbname=dbname), autocommit=True) as c:
            c.execute(f"SELECT {schema}.pg_stat_statements_reset((SELECT oid FROM pg_roles WHERE rolname = %s))",
                      (ROLE,))
        t0 = time.perf_counter()
        result = run_runbook("incident-triage", "bench", params, config=config, output_dir=out)
        wall = time.perf_counter() - t0
        if result.sidecar["status"] != "ok":
            raise SystemExit(f"runbook failed on {dbname}: {result.sidecar['error']}")
        with psycopg.connect(server.conninfo(dbname=dbname), autocommit=True) as c:
            rows = c.execute(
                "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 70), calls, total_plan_time + total_exec_time "
                f"FROM {schema}.pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = %s "
                "ORDER BY 3 DESC", (ROLE,)).fetchall()
        runs.append({"server_ms": round(sum(r[2] for r in rows), 2), "statements": sum(r[1] for r in rows),
                     "wall_s": round(wall, 2)})
        last = rows
    return {"database": dbname, "runs": runs, "median_server_ms": statistics.median(r["server_ms"] for r in runs),
            "statements": runs[-1]["statements"],
            "top": [{"query": q, "calls": n, "ms": round(ms, 2)} for q, n, ms in last[:6]],
            "relations": _relations(server, dbname)}


def _relations(server, dbname: str) -> int:
    with psycopg.connect(server.conninfo(dbname=dbname), autocommit=True) as c:
        return c.execute("SELECT count(*) FROM pg_class").fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args(argv)

    from opsbook.database.embedded import EmbeddedServer
    from opsbook.demo import FRESHNESS

    with tempfile.TemporaryDirectory(prefix="opsbook-bench-") as tmp:
        server = EmbeddedServer(Path(tmp) / "data", settings=dict(SETTINGS))
        server.start()
        try:
            with psycopg.connect(server.conninfo(), autocommit=True) as c:
                c.execute(f"CREATE ROLE {ROLE} LOGIN")
                c.execute(f"GRANT pg_monitor, pg_read_all_data TO {ROLE}")  # a read-only ops role
            results = []
            if not args.skip_demo:
                from opsbook.demo import ensure_demo_database

                ensure_demo_database(server=server)
                results.append(server_time(server, "demo", {"freshness": FRESHNESS}, args.repeat,
                                           Path(tmp) / "reports"))
            t0 = time.perf_counter()
            name = many_tables(server, args.tables, analyze=True)
            built = time.perf_counter() - t0
            results.append({**server_time(server, name, {}, args.repeat, Path(tmp) / "reports"),
                            "tables": args.tables, "build_s": round(built, 1)})
        finally:
            server.stop()
    report = {"when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "results": results}
    out = HERE / "results" / f"incident-server-time-{report['when'][:10]}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'database':<14}{'relations':>10}{'statements':>12}{'server ms (median)':>20}{'runs (ms)':>28}")
    for r in results:
        print(f"{r['database']:<14}{r['relations']:>10}{r['statements']:>12}{r['median_server_ms']:>20.1f}"
              f"{', '.join(str(x['server_ms']) for x in r['runs']):>28}")
        for t in r["top"][:4]:
            print(f"    {t['ms']:>8.2f} ms  x{t['calls']:<3} {t['query']}")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
