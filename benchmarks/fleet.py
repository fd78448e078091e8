"""Fleet benchmark, measured in one run: 20 targets (20 databases on one server) one `opsbook run` at a time, then
through `opsbook fleet --workers 2`, `run_many(workers=2)` (warm kernels) and a local Dask cluster of two workers.

    .venv/bin/python benchmarks/fleet.py [--targets 20] [--runbook incident-triage]

Prints each way's wall time and its ratio to the twenty single runs, with the machine's load average.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--runbook", default="incident-triage")
    args = ap.parse_args()
    import psycopg

    from opsbook.database.embedded import EmbeddedServer

    work = Path(tempfile.mkdtemp(prefix="opsbook-bench-fleet-"))
    os.environ["OPSBOOK_HOME"] = str(work / "home")
    server = EmbeddedServer(work / "home" / "pg", port=_free_port(), settings={"max_connections": "200"})
    server.start()
    procs: list[subprocess.Popen] = []
    try:
        lines = []
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            for i in range(args.targets):
                c.execute(f"CREATE DATABASE t{i}")
                lines += [f"[targets.t{i}]", f"dsn = {json.dumps(server.conninfo(dbname=f't{i}'))}", ""]
        cfg = work / "opsbook.toml"
        cfg.write_text("\n".join(lines) + f"[history]\nurl = \"sqlite:///{work}/history.sqlite\"\n")
        env = {**os.environ, "OPSBOOK_CONFIG": str(cfg), "OPSBOOK_NO_SERVICE": "1"}  # cold single runs
        names = [f"t{i}" for i in range(args.targets)]
        results = {}

        t0 = time.perf_counter()
        for n in names:
            subprocess.run([str(BIN / "opsbook"), "run", args.runbook, "--target", n, "--output-dir",
                            str(work / "single")], env=env, check=True, capture_output=True)
        results["single CLI runs, one at a time"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        subprocess.run([str(BIN / "opsbook"), "fleet", args.runbook, "--all", "--workers", "2", "--output-dir",
                        str(work / "fleet")], env=env, check=True, capture_output=True)
        results["opsbook fleet --workers 2"] = time.perf_counter() - t0

        from opsbook.config.file import load
        from opsbook.run.kernels.many import Job, run_many

        os.environ["OPSBOOK_CONFIG"] = str(cfg)
        t0 = time.perf_counter()
        many = run_many([Job(args.runbook, n) for n in names], workers=2, config=load(str(cfg)),
                        output_dir=work / "many")
        results["run_many(workers=2), warm kernels"] = time.perf_counter() - t0
        memory = {}
        for r in many:
            w = r.worker or {}
            memory[w.get("pid")] = max(memory.get(w.get("pid"), (0, 0)), (w.get("max_rss_mb", 0),
                                                                        w.get("kernel_max_rss_mb", 0)))

        port = _free_port()
        address = f"tcp://127.0.0.1:{port}"
        procs.append(subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for i in (1, 2):
            procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard",
                                           "--name", f"w{i}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          cwd=work))
        from distributed import Client

        with Client(address, timeout=60) as client:
            while len(client.scheduler_info()["workers"]) < 2:
                time.sleep(0.5)
        t0 = time.perf_counter()
        subprocess.run([str(BIN / "opsbook"), "fleet", args.runbook, "--all", "--scheduler", address,
                        "--output-dir", str(work / "dask")], env=env, check=True, capture_output=True)
        results["opsbook fleet --scheduler (2 Dask workers)"] = time.perf_counter() - t0

        base = results["single CLI runs, one at a time"]
        print(f"{args.targets} targets, {args.runbook}; load average {os.getloadavg()[0]:.2f} "
              f"(target from the issue: fleet at most 0.3x the single runs; prototype 10 s against 119 s)")
        for k, v in results.items():
            print(f"  {k:<46} {v:7.1f} s  {v / base:5.2f}x")
        print("  memory per worker (peak RSS): " + ", ".join(f"worker {a:.0f} MB + largest kernel {b:.0f} MB"
                                                          for a, b in memory.values()))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        server.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
