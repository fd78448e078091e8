"""What the security checks' queries cost on a 10,000-table catalog, as a ratio to the same checks on an empty one.

    .venv/bin/python benchmarks/security_catalog_cost.py [--tables 10000] [--repeat 3]

A scratch embedded server in a temporary folder; the API roles exist and may use every table (Supabase's grants), so
the exposure queries have the most to do: every table without RLS is reachable. Per run, the summed client-side
time of the security queries (Session.timings) and the slowest one; the floor is the same on an empty database.
Writes benchmarks/results/security-catalog-cost-<UTC date>.json and prints a table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
from pathlib import Path

import psycopg
from many_tables import many_tables

HERE = Path(__file__).resolve().parent
ROLES = "CREATE ROLE anon NOLOGIN; CREATE ROLE authenticated NOLOGIN;"
GRANTS = "GRANT USAGE ON SCHEMA public TO anon, authenticated; GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated;"


def measure(server, dbname: str, repeat: int) -> dict:
    from opsbook.checks.security import audit
    from opsbook.config.file import from_dict
    from opsbook.run.context import Runbook

    config = from_dict({"targets": {"bench": {"dsn": server.conninfo(dbname=dbname)}}})
    totals, slowest = [], {}
    for _ in range(repeat):
        rb = Runbook("security-audit", "bench", config=config, params={"evaluate_policies": False})
        rb.connect()
        audit.run(rb)
        timings = [t for t in rb.db.timings if t.name.startswith("security/")]
        rb.close()
        totals.append(sum(t.duration_ms for t in timings))
        top = max(timings, key=lambda t: t.duration_ms)
        slowest = {"query": top.name, "ms": round(top.duration_ms, 1)}
    return {"total_ms": round(statistics.median(totals), 1), "slowest": slowest}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    from opsbook.database.embedded import EmbeddedServer

    with tempfile.TemporaryDirectory(prefix="opsbook-bench-") as tmp:
        server = EmbeddedServer(Path(tmp) / "data", settings={"fsync": "off", "synchronous_commit": "off",
                                                              "full_page_writes": "off"})
        server.start()
        try:
            with psycopg.connect(server.conninfo(), autocommit=True) as c:
                c.execute(ROLES)
                c.execute("CREATE DATABASE empty")
            floor = measure(server, "empty", args.repeat)
            name = many_tables(server, args.tables)
            with psycopg.connect(server.conninfo(dbname=name), autocommit=True) as c:
                c.execute(GRANTS)
                relations = c.execute("SELECT count(*) FROM pg_class").fetchone()[0]
            big = measure(server, name, args.repeat)
        finally:
            server.stop()
    report = {"when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "tables": args.tables,
              "relations": relations, "floor": floor, "many_tables": big,
              "ratio": round(big["total_ms"] / floor["total_ms"], 1)}
    out = HERE / "results" / f"security-catalog-cost-{report['when'][:10]}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"empty database:   {floor['total_ms']:>8.1f} ms of security queries (slowest {floor['slowest']})")
    print(f"{args.tables:,} tables:    {big['total_ms']:>8.1f} ms (slowest {big['slowest']}), "
          f"{report['ratio']}x the floor, {relations:,} relations")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
