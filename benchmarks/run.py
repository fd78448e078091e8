"""Runner benchmarks, measured as ratios in one run: the floor (an empty notebook), runbooks, report sizes.

    .venv/bin/python benchmarks/run.py [--repeat 3] [--runbook incident-triage ...] [--target demo]

Writes benchmarks/results/<UTC date>.json (ignored by git) and prints a table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent


def empty_runbook(folder: Path) -> None:
    """The floor: a parameters cell and nothing else, so a run costs a kernel start and an HTML export."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata.opsbook = {"purpose": "benchmark floor"}
    cell = nbformat.v4.new_code_cell('target: str = "demo"  # target name')
    cell.metadata.tags = ["parameters"]
    nb.cells = [cell]
    nbformat.write(nb, folder / "empty.ipynb")


def timed_runs(name: str, target: str, repeat: int, out: Path, runbooks: Path | None) -> dict:
    from opsbook.runner import run_runbook, runbook_meta

    saved = os.environ.get("OPSBOOK_RUNBOOKS")
    if runbooks:
        os.environ["OPSBOOK_RUNBOOKS"] = str(runbooks)
    try:
        # on the demo, each runbook runs as `opsbook demo` runs it (backup-verification takes its dump first)
        params = runbook_meta(name).get("demo_parameters", {}) if target == "demo" and not runbooks else {}
        walls, last = [], None
        for _ in range(repeat):
            t0 = time.perf_counter()
            last = run_runbook(name, target, params, output_dir=out)
            walls.append(time.perf_counter() - t0)
    finally:
        if saved is None:
            os.environ.pop("OPSBOOK_RUNBOOKS", None)
        else:
            os.environ["OPSBOOK_RUNBOOKS"] = saved
    counts: dict[str, int] = {}
    for f in last.sidecar["findings"]:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    return {"runbook": name, "target": target, "status": last.sidecar["status"], "runs_s": [round(w, 3) for w in walls],
            "median_s": round(statistics.median(walls), 3), "findings": counts,
            "sizes_bytes": {p.suffix[1:]: p.stat().st_size
                            for p in (last.html_path, last.notebook_path, last.sidecar_path)}}


def import_time_ms(module: str, repeat: int) -> float:
    """Median wall time of a fresh interpreter importing `module`, less a bare interpreter start."""
    def once(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t0

    bare = statistics.median(once("pass") for _ in range(repeat))
    return round((statistics.median(once(f"import {module}") for _ in range(repeat)) - bare) * 1000, 1)


def ensure_demo(target: str) -> str:
    if target != "demo":
        return "not needed"
    try:
        from opsbook.demo import ensure_demo_database
    except ImportError:
        return "opsbook.demo missing: runbooks ran against an empty server"
    ensure_demo_database(progress=lambda line: print(f"  {line}", file=sys.stderr))
    return "built or present"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per notebook; the median is reported")
    ap.add_argument("--runbook", action="append", help="runbook to measure (repeatable; default incident-triage)")
    ap.add_argument("--target", default="demo")
    args = ap.parse_args()
    runbooks = args.runbook or ["incident-triage"]

    demo = ensure_demo(args.target)
    with tempfile.TemporaryDirectory(prefix="opsbook-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "floor").mkdir()
        empty_runbook(tmp / "floor")
        out = tmp / "reports"
        timed_runs("empty", "demo", 1, out, tmp / "floor")  # warm-up: imports, plotly copy, disk caches
        floor = timed_runs("empty", "demo", args.repeat, out, tmp / "floor")
        measured = [timed_runs(name, args.target, args.repeat, out, None) for name in runbooks]
        plotly = sorted(out.glob("plotly-*.min.js"))
        shared = {p.name: p.stat().st_size for p in plotly}
    for m in measured:
        m["ratio_to_floor"] = round(m["median_s"] / floor["median_s"], 2)
    result = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "load_1m": round(os.getloadavg()[0], 2)},
              "demo_database": demo, "repeat": args.repeat, "floor": floor, "runbooks": measured,
              "shared_plotly_bytes": shared,
              "import_ms": {m: import_time_ms(m, args.repeat) for m in ("opsbook", "opsbook.cli")}}
    (HERE / "results").mkdir(exist_ok=True)
    path = HERE / "results" / f"{result['date'][:10]}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")

    print(f"{'runbook':<22}{'median s':>10}{'x floor':>9}{'html kB':>10}{'ipynb kB':>10}{'json kB':>9}  findings")
    for m in [floor, *measured]:
        s = m["sizes_bytes"]
        ratio = f"{m.get('ratio_to_floor', 1.0):.2f}"
        tally = ", ".join(f"{n} {k}" for k, n in m["findings"].items()) or "-"
        print(f"{m['runbook']:<22}{m['median_s']:>10.2f}{ratio:>9}{s['html'] / 1024:>10.1f}{s['ipynb'] / 1024:>10.1f}"
              f"{s['json'] / 1024:>9.1f}  {tally} ({m['status']})")
    for name, size in shared.items():
        print(f"shared {name}: {size / 1024:,.0f} kB, once per reports folder")
    print("import: " + ", ".join(f"{k} {v:.0f} ms" for k, v in result["import_ms"].items()))
    print(f"load {result['machine']['load_1m']} on {result['machine']['cpus']} cpus; demo database: {demo}")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
