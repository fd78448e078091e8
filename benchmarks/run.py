"""The speed targets of issue 12, as ratios measured in one run against the plain toolchain's empty notebook.

    .venv/bin/python benchmarks/run.py [--repeat 5] [--many 20] [--snapshots 6000] [--skip-capacity]
        [--log-seek-gb 10] [--skip-tuning] [--tuning-rows 2000000]

The floor is what a user would otherwise script: `papermill` of a one-cell notebook, then `jupyter nbconvert
--to html`, with this venv's pinned versions, in the same run. Each target is printed with its ratio, its goal
and the number issue 12 measured before the work. Writes benchmarks/results/<UTC date>.json (not tracked).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
# issue 12, measured before this work on the same 2-core machine
OLD = {"cli_triage": "1.34x (5.8-6.2 s against 4.3 s)", "triage_html": "341 kB",
       "capacity": "2.1x (13.5 s at 6,000 against 6.3 s at 60)", "capacity_html": "3.4 MB",
       "many": "about 1.0x (119 s for 20, one at a time)", "interactive": "not built",
       "lab_verdict": "15.4 s first, 5-8 s usually (issue 23)"}


def one_cell_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, path)
    return path


def timed(cmd: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t0
    if out.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({out.returncode}): {out.stderr[-800:]}")
    return wall, out


def plain_toolchain(tmp: Path, repeat: int) -> list[float]:
    """papermill + jupyter nbconvert --to html of a one-cell notebook: what opsbook must beat."""
    src = one_cell_notebook(tmp / "one-cell.ipynb")
    walls = []
    for i in range(repeat):
        out = tmp / f"plain-{i}.ipynb"
        a, _ = timed([str(BIN / "papermill"), "--no-progress-bar", str(src), str(out)])
        b, _ = timed([str(BIN / "jupyter"), "nbconvert", "--to", "html", str(out)])
        walls.append(a + b)
    return walls


def cli_runs(runbook: str, repeat: int, out: Path, config: Path | None = None) -> tuple[list[float], dict]:
    """Whole `opsbook run RUNBOOK --target demo --json` processes; (walls, last --json object)."""
    cmd = [str(BIN / "opsbook"), *(["--config", str(config)] if config else []), "run", runbook, "--target", "demo",
           "--output-dir", str(out), "--json"]
    walls, last = [], {}
    for _ in range(repeat):
        wall, proc = timed(cmd)
        walls.append(wall)
        last = json.loads(proc.stdout)
    return walls, last


def interactive_runs(repeat: int, out: Path) -> tuple[list[float], dict]:
    """Whole `opsbook run` processes answered by the service (`opsbook serve start`), each after its next kernel
    is warm again (as for an engineer re-running triage every minute); the service is stopped afterwards unless
    it ran before."""
    from opsbook.run.serve import control

    env = {k: v for k, v in os.environ.items() if k != "OPSBOOK_NO_SERVICE"}
    before = control.status()
    if before is None:
        subprocess.run([str(BIN / "opsbook"), "serve", "start"], check=True, capture_output=True, env=env)
    cmd = [str(BIN / "opsbook"), "run", "incident-triage", "--target", "demo", "--output-dir", str(out), "--json"]
    walls, last = [], {}
    try:
        for _ in range(repeat):
            deadline = time.monotonic() + 60
            while not (control.status() or {}).get("kernel_ready") and time.monotonic() < deadline:
                time.sleep(0.1)
            requests = (control.status() or {}).get("requests", 0)
            wall, proc = timed(cmd, env=env)
            if (control.status() or {}).get("requests", 0) != requests + 1:
                raise SystemExit("the interactive measure ran locally: the service did not take the request")
            walls.append(wall)
            last = json.loads(proc.stdout)
    finally:
        if before is None:
            control.stop()
    return walls, last


def many_runs(count: int, workers: int, out: Path) -> tuple[float, list]:
    from opsbook.run.kernels.many import Job, run_many

    t0 = time.perf_counter()
    results = run_many([Job("incident-triage", "demo") for _ in range(count)], workers=workers, output_dir=out)
    return time.perf_counter() - t0, results


def warm_runs(repeat: int, out: Path) -> list[float]:
    """What a long-lived process holding a warm kernel answers: run_runbook with the pool's kernel already warm
    (the interactive mode's cost, less its socket round trip)."""
    from opsbook.run.kernels import KernelPool
    from opsbook.run.runner import run_runbook

    walls = []
    with KernelPool(size=1, refill=True) as pool:
        run_runbook("incident-triage", "demo", output_dir=out, pool=pool)  # this process's imports, once
        for _ in range(repeat):
            pool.wait_ready()  # between two requests the service has time to warm the next kernel
            t0 = time.perf_counter()
            run_runbook("incident-triage", "demo", output_dir=out, pool=pool)
            walls.append(time.perf_counter() - t0)
    return walls


def densified_store(source: Path, dest: Path, per_gap: int) -> int:
    """A copy of the demo's history with `per_gap` unchanged snapshots between each stored day (as a snapshot
    every few minutes stores: facts only where values changed); returns the demo target's snapshot count."""
    shutil.copyfile(source, dest)
    with sqlite3.connect(dest) as c:
        cols = [r[1] for r in c.execute("PRAGMA table_info(opsbook_snapshots)") if r[1] != "id"]
        rows = c.execute(f"SELECT {', '.join(cols)} FROM opsbook_snapshots WHERE target = 'demo' ORDER BY ts").fetchall()
        i_ts, i_cap = cols.index("ts"), cols.index("captured_at")
        extra = []
        for a, b in zip(rows, rows[1:]):
            step = (b[i_ts] - a[i_ts]) / (per_gap + 1)
            for k in range(1, per_gap + 1):
                r = list(a)
                r[i_ts], r[i_cap] = a[i_ts] + k * step, a[i_cap] + k * step
                extra.append(r)
        c.executemany(f"INSERT INTO opsbook_snapshots ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                      extra)
        return c.execute("SELECT count(*) FROM opsbook_snapshots WHERE target = 'demo'").fetchone()[0]


def capacity(tmp: Path, snapshots: int, repeat: int) -> dict:
    from opsbook.config.file import load

    config = load()
    source = Path(config.history_url.removeprefix("sqlite:///"))
    from opsbook.history import open_store

    store = open_store(config, create=False)
    if store is None or not store.has_history("demo"):  # what `opsbook demo` does first (not timed)
        from opsbook.database.embedded import default_server
        from opsbook.history.replay import replay_history

        print("  capacity: replaying 60 days of demo history (as `opsbook demo` does) ...", file=sys.stderr)
        replay_history(default_server(), days=60, config=config)
    if store is not None:
        store.close()
    if not source.is_file():
        return {"skipped": f"the history store is not a SQLite file here ({config.history_url.split(':')[0]})"}
    out = {}
    with sqlite3.connect(source) as c:
        base = c.execute("SELECT count(*) FROM opsbook_snapshots WHERE target = 'demo'").fetchone()[0]
    for label, per_gap in (("small", 0), ("large", max(0, round((snapshots - base) / max(base - 1, 1))))):
        store = tmp / f"history-{label}.sqlite"
        count = densified_store(source, store, per_gap)
        config = tmp / f"opsbook-{label}.toml"
        config.write_text(f'[history]\nurl = "sqlite:///{store}"\n')
        walls, last = cli_runs("capacity-planning", repeat, tmp / f"reports-{label}", config)
        out[label] = {"snapshots": count, "median_s": round(statistics.median(walls), 2),
                      "html_bytes": Path(last["report_html"]).stat().st_size,
                      "ipynb_bytes": Path(last["notebook"]).stat().st_size, "status": last["status"]}
    out["ratio"] = round(out["large"]["median_s"] / out["small"]["median_s"], 2)
    return out


def import_ms(module: str, repeat: int) -> float:
    def once(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t0

    bare = statistics.median(once("pass") for _ in range(repeat))
    return round((statistics.median(once(f"import {module}") for _ in range(repeat)) - bare) * 1000, 1)


def log_seek(gb: float) -> list[dict]:
    if not gb:
        return []
    from log_parse import seek_rows  # benchmarks/, this script's folder

    with tempfile.TemporaryDirectory(prefix="opsbook-logseek-") as tmp:
        return seek_rows(Path(tmp), gb)


def lab_verdict(repeat: int) -> dict:
    """Issue 23's time to verdict in a real browser (benchmarks/lab_verdict.py); the ratio is to `opsbook run`."""
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return {"skipped": "needs chromium"}
    from lab_verdict import measure  # benchmarks/, this script's folder

    return measure(repeat=repeat, cli_repeat=repeat)


def query_tuning(rows: int) -> dict:
    """Issue 26's acceptance on its own throwaway servers (benchmarks/query_tuning.py)."""
    from query_tuning import measure  # benchmarks/, this script's folder

    return measure(rows=rows)


def ensure_demo() -> None:
    from opsbook.demo import ensure_demo_database

    ensure_demo_database(progress=lambda line: print(f"  {line}", file=sys.stderr))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per measure; the median is reported")
    ap.add_argument("--many", type=int, default=20, help="runs through run_many (workers=2)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--snapshots", type=int, default=6000, help="history size for the capacity-planning target")
    ap.add_argument("--skip-capacity", action="store_true")
    ap.add_argument("--log-seek-gb", type=float, default=1,
                    help="one hour of a day of this many GB of logs, read by seeking, beside a full scan "
                         "(benchmarks/log_parse.py --seek-gb; `make bench-seek` does 10 GB; 0 leaves it out)")
    ap.add_argument("--skip-lab", action="store_true",
                    help="leave out the time to verdict in JupyterLab (benchmarks/lab_verdict.py; needs chromium)")
    ap.add_argument("--skip-tuning", action="store_true",
                    help="leave out issue 26's query-tuning acceptance (benchmarks/query_tuning.py: its own servers)")
    ap.add_argument("--tuning-rows", type=int, default=2_000_000, help="rows per table of the query-tuning workload")
    args = ap.parse_args()
    if args.tuning_rows < 10_000:
        ap.error("--tuning-rows must be at least 10000")
    os.environ["OPSBOOK_NO_SERVICE"] = "1"  # every measure but the interactive one runs in its own process
    ensure_demo()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="opsbook-bench-") as tmp:
        tmp = Path(tmp)
        cli_runs("incident-triage", 1, tmp / "warm-up")  # disk caches, the shared plotly.js copy
        plain = plain_toolchain(tmp, args.repeat)
        cli, triage = cli_runs("incident-triage", args.repeat, tmp / "reports")
        warm = warm_runs(args.repeat, tmp / "warm")
        served, served_last = interactive_runs(args.repeat, tmp / "served")
        many_wall, results = many_runs(args.many, args.workers, tmp / "many")
        cap = {"skipped": "--skip-capacity"} if args.skip_capacity else capacity(tmp, args.snapshots, 1)
        html_bytes = Path(triage["report_html"]).stat().st_size
        nb_bytes = Path(triage["notebook"]).stat().st_size
        shared = sum(p.stat().st_size for p in (tmp / "reports").glob("plotly-*.min.js"))
    plain_s, cli_s = statistics.median(plain), statistics.median(cli)
    workers = {}
    for r in results:
        w = r.worker or {}
        workers[w.get("pid")] = max(workers.get(w.get("pid"), (0, 0)), (w.get("max_rss_mb", 0),
                                                                         w.get("kernel_max_rss_mb", 0)))
    result = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_1m_before": round(load_before, 2), "load_1m_after": round(os.getloadavg()[0], 2)},
        "plain_toolchain_s": [round(w, 3) for w in plain], "cli_incident_triage_s": [round(w, 3) for w in cli],
        "cli_ratio": round(cli_s / plain_s, 2), "warm_in_process_s": [round(w, 3) for w in warm],
        "warm_ratio": round(statistics.median(warm) / plain_s, 2),
        "interactive_cli_s": [round(w, 3) for w in served],
        "interactive_ratio": round(statistics.median(served) / plain_s, 2),
        "interactive_status": served_last.get("status"),
        "triage_html_bytes": html_bytes, "triage_ipynb_bytes": nb_bytes,
        "triage_status": triage["status"], "shared_plotly_bytes": shared,
        "many": {"runs": args.many, "workers": args.workers, "wall_s": round(many_wall, 2),
                 "ratio_to_single_cli_runs": round(many_wall / (args.many * cli_s), 2),
                 "failed": sum(r.exit_code == 1 for r in results),
                 "memory_mb": [{"worker_max_rss": a, "kernel_max_rss": b} for a, b in workers.values()]},
        "capacity": cap,
        "import_ms": {m: import_ms(m, args.repeat) for m in ("opsbook", "opsbook.cli.main")},
        "log_seek": log_seek(args.log_seek_gb),
        "lab_verdict": {"skipped": "--skip-lab"} if args.skip_lab else lab_verdict(args.repeat),
        "query_tuning": {"skipped": "--skip-tuning"} if args.skip_tuning else query_tuning(args.tuning_rows),
    }
    (HERE / "results").mkdir(exist_ok=True)
    path = HERE / "results" / f"{result['date'][:10]}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")

    rows = [("opsbook run incident-triage (CLI) / plain empty notebook", f"{cli_s:.2f} s / {plain_s:.2f} s",
             f"{result['cli_ratio']:.2f}x", "<= 0.5x", OLD["cli_triage"]),
            ("incident-triage HTML", f"{html_bytes / 1024:.0f} kB", "", "<= 150 kB", OLD["triage_html"]),
            (f"{args.many} runs via run_many(workers={args.workers}) / {args.many} single CLI runs",
             f"{many_wall:.1f} s / {args.many * cli_s:.1f} s", f"{result['many']['ratio_to_single_cli_runs']:.2f}x",
             "<= 0.3x", OLD["many"])]
    if "ratio" in cap:
        rows += [(f"capacity-planning {cap['large']['snapshots']:,} / {cap['small']['snapshots']} snapshots",
                  f"{cap['large']['median_s']:.2f} s / {cap['small']['median_s']:.2f} s", f"{cap['ratio']:.2f}x",
                  "<= 1.3x", OLD["capacity"]),
                 (f"capacity-planning HTML at {cap['large']['snapshots']:,}",
                  f"{cap['large']['html_bytes'] / 1024:.0f} kB", "", "< 1 MB", OLD["capacity_html"])]
    else:
        rows.append(("capacity-planning 6,000 / 60 snapshots", "skipped", "", "<= 1.3x", cap["skipped"]))
    rows.append(("opsbook run incident-triage via `opsbook serve` / plain empty notebook",
                 f"{statistics.median(served):.2f} s / {plain_s:.2f} s", f"{result['interactive_ratio']:.2f}x",
                 "<= 0.2x", OLD["interactive"]))
    rows.append(("  (run_runbook on a warm kernel inside one process, no CLI)", f"{statistics.median(warm):.2f} s",
                 f"{result['warm_ratio']:.2f}x", "", ""))
    lab = result["lab_verdict"]
    if "verdict_first_s" in lab:
        rerun = statistics.median(lab["verdict_rerun_s"])
        rows.append(("JupyterLab: Run All to the verdict on screen, first / median re-run",
                     f"{lab['verdict_first_s']:.2f} s / {rerun:.2f} s", f"{lab['ratio_rerun_to_cli']:.2f}x",
                     f"<= {lab['goal_s']:.0f} s", OLD["lab_verdict"]))
    for r in result["log_seek"]:
        if "hour_s" in r:
            rows.append((f"one hour of a {r['gb']:.0f} GB day of {r['format']} / a full scan",
                         f"{r['hour_s']:.1f} s / {r['full_scan_s']:.0f} s", "", "< 30 s", "not built"))
    print(f"{'target':<66}{'measured':>24}{'ratio':>8}  {'goal':<10} before (issue 12)")
    for name, measured, ratio, goal, old in rows:
        print(f"{name:<66}{measured:>24}{ratio:>8}  {goal:<10} {old}")
    mem = ", ".join(f"worker {m['worker_max_rss']:.0f} MB + kernel {m['kernel_max_rss']:.0f} MB"
                    for m in result["many"]["memory_mb"])
    print(f"memory per worker (peak RSS): {mem}")
    print("import: " + ", ".join(f"{k} {v:.0f} ms" for k, v in result["import_ms"].items()))
    print(f"load average {load_before:.2f} before, {result['machine']['load_1m_after']:.2f} after, "
          f"on {os.cpu_count()} cpus; 1,000 blocked sessions: benchmarks/many_waiters.py")
    if "servers" in result["query_tuning"]:
        from query_tuning import report  # benchmarks/, this script's folder

        report(result["query_tuning"])
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
