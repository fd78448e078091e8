"""What refreshing reports/index.html costs after one more run, with N sidecars already there (issue 12).

    .venv/bin/python benchmarks/index_cost.py [--runs 10000]

Writes N sidecars (findings like a real incident-triage run's, spread over a year) into a temporary folder, then
measures, in the same run: the floor (reading one sidecar and writing one small page), the first build (every
sidecar read, the cache written) and the refresh after one more run (what every `opsbook run` pays). Prints the
seconds, the refresh as a ratio of the first build and of the floor, the bytes read, and the page sizes.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

from opsbook.report import index as report_index

FINDING = {"check": "activity.long_running", "severity": "warning", "title": "pid 4711 active for 20.1 s",
           "detail": "x" * 300, "objects": ["pid 4711"], "value": 20.1, "threshold": 10, "remediation": "y" * 200}


def sidecar(root: Path, i: int, start: dt.datetime) -> None:
    when = start + dt.timedelta(minutes=53 * i)
    day = root / when.strftime("%Y-%m-%d")
    day.mkdir(exist_ok=True)
    body = {"runbook": ("incident-triage", "capacity-planning", "cost-analysis")[i % 3], "target": f"t{i % 7}",
            "status": "ok" if i % 50 else "failed", "started_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration_s": 6.1, "server_version_num": 180000, "parameters": {}, "findings": [FINDING] * 12,
            "metrics": {"connections_used": 41}, "error": None if i % 50 else "TypeError: boom (code cell 4)"}
    (day / f"{body['runbook']}--{body['target']}--{when:%H%M%S}Z-{i}.json").write_text(json.dumps(body))


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="opsbook-index-") as tmp:
        root = Path(tmp)
        start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        for i in range(args.runs):
            sidecar(root, i, start)
        read = sum(p.stat().st_size for p in root.glob("*/*.json"))
        one = next(root.glob("*/*.json"))
        floor = timed(lambda: (json.loads(one.read_text()), (root / "floor.html").write_text("x" * 10_000)))
        first = timed(lambda: report_index.write_index(root))
        sidecar(root, args.runs, start)
        refresh = timed(lambda: report_index.write_index(root))
        pages = sorted(root.glob("index*.html"))
        print(f"{args.runs:,} sidecars ({read / 1e6:,.1f} MB)")
        print(f"floor (one sidecar, one page)   {floor * 1000:8.1f} ms")
        print(f"first build (reads every one)   {first * 1000:8.1f} ms")
        print(f"refresh after one more run      {refresh * 1000:8.1f} ms   = {refresh / first:.2f} x first build, "
              f"{refresh / floor:,.0f} x floor")
        print(f"index.html {pages[0].stat().st_size / 1e3:,.0f} kB; {len(pages) - 1} month pages, largest "
              f"{max(p.stat().st_size for p in pages) / 1e3:,.0f} kB; cache {(root / report_index.CACHE).stat().st_size / 1e6:,.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
