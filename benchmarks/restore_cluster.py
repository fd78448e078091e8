"""What a throwaway cluster costs next to the restore it contains: copy of the initdb template, start, stop and
delete, against the pg_restore of a dump, measured in the same run.

    .venv/bin/python benchmarks/restore_cluster.py [--rows 200000] [--repeat 5]

Builds a database of N rows (one table with a primary key and an index) on a scratch embedded server in a temporary
folder, dumps it once (custom format), then `--repeat` times: makes a throwaway cluster, restores the dump into it
as the non-superuser restore role, deletes the cluster. Reports the medians and the ratio cluster / restore (the
floor: the restore itself). Writes benchmarks/results/restore-cluster-<UTC date>.json and prints a table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="opsbook-bench-") as tmp:
        os.environ["OPSBOOK_HOME"] = tmp
        os.chmod(tmp, 0o755)
        from opsbook.database.embedded import EmbeddedServer
        from opsbook.recovery import archive, dump, restore, tools
        from opsbook.recovery.scratch import open_scratch, prepare

        server = EmbeddedServer(Path(tmp) / "src", settings={"fsync": "off"})
        server.start()
        try:
            with psycopg.connect(server.conninfo(), autocommit=True) as c:
                c.execute("CREATE DATABASE bench")
            with psycopg.connect(server.conninfo(dbname="bench"), autocommit=True) as c:
                c.execute("CREATE TABLE t (id bigint PRIMARY KEY, body text, at timestamptz DEFAULT now())")
                c.execute("INSERT INTO t (id, body) SELECT g, md5(g::text) FROM generate_series(1, %s) g",
                          (args.rows,))
                c.execute("CREATE INDEX ON t (at)")
            client = tools.choose(None)
            result = dump.take(client, server.conninfo(dbname="bench"), Path(tmp) / "bench.dump", "custom")
            backup = archive.describe(result.path)
            rows = []
            for i in range(args.repeat + 1):  # the first run also makes the initdb template: reported apart
                t0 = time.perf_counter()
                with open_scratch(None, None, None, "verify") as scratch:
                    ready = time.perf_counter() - t0
                    prepare(scratch, backup, client)
                    r = restore.restore(backup, client, scratch.conninfo, scratch=scratch)
                    assert r.completed and not r.errors, (r.fatal, r.errors[:3])
                    t_stop = time.perf_counter()
                gone = time.perf_counter() - t_stop
                rows.append({"cluster_ready_s": ready, "restore_s": r.duration_s, "cluster_gone_s": gone,
                             **scratch.cluster.timings})
        finally:
            server.stop()
    first, rest = rows[0], rows[1:]
    med = {k: statistics.median(r[k] for r in rest) for k in rest[0]}
    cluster = med["cluster_ready_s"] + med["cluster_gone_s"]
    out = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "rows": args.rows,
           "repeat": args.repeat, "load_1min": os.getloadavg()[0], "dump_bytes": backup.size_bytes,
           "first_run_template_s": round(first["initdb_s"], 3),
           "median": {k: round(v, 3) for k, v in med.items()},
           "cluster_over_restore": round(cluster / med["restore_s"], 3)}
    folder = HERE / "results"
    folder.mkdir(exist_ok=True)
    (folder / f"restore-cluster-{dt.date.today():%Y-%m-%d}.json").write_text(json.dumps(out, indent=1))
    print(f"{'measure':38} {'seconds':>8}")
    print(f"{'initdb template (first run only)':38} {out['first_run_template_s']:8.3f}")
    for k in ("initdb_s", "start_s", "cluster_ready_s", "restore_s", "stop_s", "cluster_gone_s"):
        print(f"{k:38} {med[k]:8.3f}")
    print(f"{'cluster (ready + gone) / restore':38} {out['cluster_over_restore']:8.3f}   "
          f"(load {out['load_1min']:.1f}, {args.rows:,} rows, dump {backup.size_bytes:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
