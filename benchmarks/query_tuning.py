"""Issue 26's acceptance, measured: the query-tuning runbook on a known workload with millions of rows, on the
embedded server and on Debian's PostgreSQL 15, then its proposed indexes created on the real database.

    .venv/bin/python benchmarks/query_tuning.py [--rows 2000000] [--repeat 1] [--servers embedded,pg15]

Per server (each a throwaway cluster in a temporary folder, started and stopped here): the shared workload of
tests/tuning_workload.py with `--rows` rows per table, run once to warm the caches, pg_stat_statements reset, run
`--repeat` times (the "before" means), the runbook (opsbook.run.runner.run_runbook), exactly its proposed indexes
created on the real database (CREATE INDEX CONCURRENTLY), pg_stat_statements reset, the workload again (the
"after" means). Printed per statement: the measured mean execution time before and after, the shadow's planned cost
with the proposals against the real database's generic planned cost with the same indexes (tolerance: 5%); the
proposals, whether each expected index was proposed and no other, the hypopg comparison where PostgreSQL 15 has
hypopg, and the runbook's server time on the target (goal: under one second). Writes the key `query_tuning` of
benchmarks/results/<UTC date>.json (benchmarks/run.py writes the same file).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the workload the tests use
from tuning_workload import EXPECTED, STATEMENTS, placeholders, run_workload, seed

PG15_BIN = Path("/usr/lib/postgresql/15/bin")
TOLERANCE = 0.05  # the shadow's planned cost against the real database's, same indexes
SERVER_GOAL_MS = 1000
SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_wal_size": "4GB",
            "maintenance_work_mem": "256MB"}
NAMES = {"public.events": "events by account_id", "public.orders": "orders by region, channel",
         "public.notices": "unread notices", "public.ledger": "ledger by account"}


def label(text: str) -> str:
    table = re.search(r"FROM (public\.\w+)", text).group(1)
    return "aggregate of events (no index helps)" if "GROUP BY" in text else NAMES[table]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def means(conninfo: str) -> dict[str, tuple[int, float]]:
    """statement text -> (calls, mean execution ms) from pg_stat_statements, this database's."""
    with psycopg.connect(conninfo, autocommit=True) as c:
        rows = c.execute("SELECT query, calls, mean_exec_time FROM pg_stat_statements WHERE dbid = "
                         "(SELECT oid FROM pg_database WHERE datname = current_database())").fetchall()
    return {q: (int(n), float(m)) for q, n, m in rows}


def reset(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute("SELECT pg_stat_statements_reset()")


def real_costs(conninfo: str) -> dict[str, float]:
    """statement text -> the real database's generic planned cost (as opsbook plans on the target)."""
    from opsbook.tuning.hypopg import generic_plan

    out = {}
    with psycopg.connect(conninfo, autocommit=True) as c:
        version = c.info.server_version
        for text, _, _ in STATEMENTS:
            with c.transaction():
                out[placeholders(text)] = float(generic_plan(c, placeholders(text), version, ["public"])["Total Cost"])
    return out


def compare_titles(config) -> list[str]:
    """tuning.compare's findings from a tuning run in this process (what the runbook judges), with their detail."""
    from opsbook.checks.tuning import judge_compare
    from opsbook.database.session import connect
    from opsbook.tuning.advisor import tune

    with connect(config.target("bench")) as db:
        t = tune(db)
    return [f"{f.title} [{f.detail}]" for f in judge_compare(t)]


def one_server(name: str, bindir: Path | None, rows: int, repeat: int) -> dict:
    from opsbook.config.file import from_dict
    from opsbook.database.embedded import EmbeddedServer
    from opsbook.run.runner import run_runbook

    tmp = Path(tempfile.mkdtemp(prefix=f"opsbook-bench-tuning-{name}-"))
    os.chmod(tmp, 0o755)  # as root, the server account traverses it to its data directory
    server = EmbeddedServer(tmp / "data", bindir=bindir, port=free_port(), settings=SETTINGS)
    out: dict = {"server": name, "rows": rows, "repeat": repeat}
    server.start()
    try:
        out["version"] = server.version()
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            c.execute("CREATE DATABASE bench")
        conninfo = server.conninfo(dbname="bench")
        t0 = time.perf_counter()
        seed(conninfo, rows)
        out["seed_s"] = round(time.perf_counter() - t0, 1)
        hypopg = name == "pg15" and (PG15_BIN.parent / "lib" / "hypopg.so").exists()
        if hypopg:
            with psycopg.connect(conninfo, autocommit=True) as c:
                c.execute("CREATE EXTENSION hypopg")
        run_workload(conninfo, 1)  # warm caches: before and after both read warm pages
        reset(conninfo)
        t0 = time.perf_counter()
        run_workload(conninfo, repeat)
        out["workload_before_s"] = round(time.perf_counter() - t0, 1)
        before = means(conninfo)
        t0 = time.perf_counter()
        config = from_dict({"targets": {"bench": {"dsn": conninfo}}})
        result = run_runbook("query-tuning", "bench", config=config, output_dir=tmp / "reports")
        out["runbook_s"] = round(time.perf_counter() - t0, 1)
        out["runbook_exit"] = result.exit_code
        metrics = result.sidecar.get("metrics", {})
        out["target_server_ms"] = metrics.get("tuning_target_server_ms")
        out["shadow_build_s"] = metrics.get("tuning_shadow_build_s")
        findings = result.sidecar.get("findings", [])
        proposals = [f for f in findings if f["check"] == "tuning.indexes" and f["severity"] == "warning"]
        made = [f["remediation"].split(";")[0] + ";" for f in proposals]
        shapes = {re.search(r"on (\S+) \((.*?)\) lowers", f["title"]).groups() for f in proposals}
        out["proposals"] = made
        out["expected_proposed"] = {f"{t} ({c})": (t, c) in shapes for t, c in sorted(EXPECTED)}
        out["others_proposed"] = sorted(f"{t} ({c})" for t, c in shapes - EXPECTED)
        out["exactly_expected"] = shapes == EXPECTED
        out["compare"] = [f["title"] for f in findings if f["check"] == "tuning.compare"]
        if not out["compare"]:  # a runbook that does not judge tuning.compare yet: the same run, in this process
            out["compare"] = compare_titles(config) if hypopg else ["no hypopg on this server"]
        shadow_after: dict[str, float] = {}
        for f in proposals:
            for qid, after in re.findall(r"queryid (-?\d+): cost [\d,.]+ -> ([\d,.]+)", f["detail"]):
                shadow_after[qid] = min(shadow_after.get(qid, float("inf")), float(after.replace(",", "")))
        with psycopg.connect(conninfo, autocommit=True) as c:
            ids = dict(c.execute("SELECT query, queryid::text FROM pg_stat_statements WHERE dbid = "
                                 "(SELECT oid FROM pg_database WHERE datname = 'bench')").fetchall())
            t0 = time.perf_counter()
            for sql in made:
                c.execute("SET lock_timeout = '5s'")
                c.execute(sql)
            out["create_s"] = round(time.perf_counter() - t0, 1)
        real = real_costs(conninfo)
        reset(conninfo)
        run_workload(conninfo, repeat)
        after = means(conninfo)
        per = []
        for text, _, _ in STATEMENTS:
            q = placeholders(text)
            s = shadow_after.get(ids.get(q, ""))
            row = {"statement": label(text), "calls": before.get(q, (0, 0))[0],
                   "mean_ms_before": round(before.get(q, (0, float("nan")))[1], 2),
                   "mean_ms_after": round(after.get(q, (0, float("nan")))[1], 2),
                   "shadow_cost_after": None if s is None else round(s, 1), "real_cost_after": round(real[q], 1)}
            row["within_tolerance"] = None if s is None else abs(s - real[q]) <= TOLERANCE * real[q]
            per.append(row)
        out["statements"] = per
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def measure(rows: int = 2_000_000, repeat: int = 1, servers: tuple[str, ...] = ("embedded", "pg15")) -> dict:
    out = {"rows": rows, "repeat": repeat, "tolerance": TOLERANCE, "server_goal_ms": SERVER_GOAL_MS, "servers": []}
    for name in servers:
        if name == "pg15" and not (PG15_BIN / "pg_ctl").exists():
            out["servers"].append({"server": name, "skipped": f"no PostgreSQL 15 at {PG15_BIN}"})
            continue
        print(f"  query-tuning: {name}, {rows:,} rows per table ...", file=sys.stderr)
        out["servers"].append(one_server(name, PG15_BIN if name == "pg15" else None, rows, repeat))
    return out


def report(m: dict) -> None:
    print(f"\nquery-tuning on a known workload ({m['rows']:,} rows per table; shadow vs real planned cost "
          f"tolerance {m['tolerance']:.0%})")
    for s in m["servers"]:
        if "skipped" in s:
            print(f"  {s['server']}: skipped ({s['skipped']})")
            continue
        print(f"  {s['server']} (PostgreSQL {s['version']}): runbook {s['runbook_s']} s (exit {s['runbook_exit']}), "
              f"server time on the target {s['target_server_ms']} ms (goal < {m['server_goal_ms']} ms), shadow "
              f"built in {s['shadow_build_s']} s; seed {s['seed_s']} s, indexes created in {s.get('create_s')} s")
        print(f"    {'statement':<38}{'calls':>6}{'mean ms before':>16}{'after':>10}{'shadow cost':>13}"
              f"{'real cost':>11}  within")
        for r in s["statements"]:
            within = "-" if r["within_tolerance"] is None else "yes" if r["within_tolerance"] else "NO"
            shadow = "-" if r["shadow_cost_after"] is None else f"{r['shadow_cost_after']:,.1f}"
            print(f"    {r['statement']:<38}{r['calls']:>6}{r['mean_ms_before']:>16,.2f}{r['mean_ms_after']:>10,.2f}"
                  f"{shadow:>13}{r['real_cost_after']:>11,.1f}  {within}")
        for p in s["proposals"]:
            print(f"    proposed: {p}")
        print("    expected: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in s["expected_proposed"].items())
              + f"; others: {', '.join(s['others_proposed']) or 'none'}; exactly the expected: "
              + ("yes" if s["exactly_expected"] else "NO"))
        for line in s["compare"]:
            print(f"    hypopg: {line}")


def save(m: dict) -> Path:
    """Into benchmarks/results/<UTC date>.json, beside what benchmarks/run.py wrote there today."""
    folder = HERE / "results"
    folder.mkdir(exist_ok=True)
    path = folder / f"{dt.datetime.now(dt.UTC):%Y-%m-%d}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data["query_tuning"] = m
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows per table")
    ap.add_argument("--repeat", type=int, default=1, help="workload passes measured before and after")
    ap.add_argument("--servers", default="embedded,pg15", help="embedded, pg15 or both (comma-separated)")
    args = ap.parse_args()
    servers = tuple(s.strip() for s in args.servers.split(",") if s.strip())
    if args.rows < 10_000 or args.repeat < 1 or not set(servers) <= {"embedded", "pg15"}:
        print("query_tuning.py: --rows must be >= 10000, --repeat >= 1, --servers from embedded,pg15",
              file=sys.stderr)
        return 2
    m = measure(args.rows, args.repeat, servers)
    report(m)
    print(f"results: {save(m)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
