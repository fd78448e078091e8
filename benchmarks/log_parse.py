"""Log parsing throughput and memory: opsbook's reader against pgbadger (single process) on the same generated logs.

    .venv/bin/python benchmarks/log_parse.py [--mb 200] [--big-gb 1] [--seek-gb 10] [--keep DIR]

Generates a stderr log and a csvlog of --mb MB each (a realistic mix: connections, lock waits, timeouts, deadlocks,
temp files, checkpoints, autovacuum, slow statements with multi-line SQL), parses each with `pgbadger -j 1 -x json`
and with `opsbook.logs.iter_events` (every event classified), and prints MB/s of both, their ratio (of wall times,
and of CPU seconds: the steadier on a shared machine) and the peak RSS of each parsing process. --big-gb also
parses a log of that many GB with opsbook alone, for its peak RSS (constant memory: the reader streams).
--seek-gb writes a day of that many GB (stderr and csvlog) and prints the time `iter_events` takes for one hour
of it (since/until: a binary search on the file's timestamps, logs/seek.py) beside a full scan's. pgbadger
absent: its columns say so and the opsbook numbers still print.
Writes benchmarks/results/log_parse-<UTC date>.json.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PREFIX = "%m [%p] %q%u@%d app=%a "
START = dt.datetime(2026, 11, 30, 0, 0, tzinfo=dt.timezone.utc)

# (severity, message, [(attached severity, text)]) ; {pid} {n} {ms} are filled in
TEMPLATES = [
    ("LOG", "connection authorized: user=app database=shop application_name=checkout_api", []),
    ("LOG", "duration: {ms} ms  statement: SELECT o.id, o.total\n\tFROM orders o\n\tJOIN customers c ON c.id = "
            "o.customer_id\n\tWHERE c.region = 'eu' AND o.created_at > now() - interval '1 day'", []),
    ("LOG", "process {pid} still waiting for ShareLock on transaction {n} after 1000.123 ms",
     [("DETAIL", "Process holding the lock: 4711. Wait queue: {pid}."),
      ("CONTEXT", 'while updating tuple (0,1) in relation "branches"'),
      ("STATEMENT", "UPDATE branches SET balance = balance - 1 WHERE id = 1")]),
    ("ERROR", "canceling statement due to statement timeout",
     [("STATEMENT", "UPDATE branches SET balance = balance - 1 WHERE id = 1")]),
    ("LOG", 'temporary file: path "base/pgsql_tmp/pgsql_tmp{pid}.0", size 2867200',
     [("STATEMENT", "SELECT * FROM events ORDER BY payload")]),
    ("ERROR", "deadlock detected",
     [("DETAIL", "Process {pid} waits for ShareLock on transaction {n}; blocked by process 4712.\n\tProcess 4712 "
                 "waits for ShareLock on transaction 9; blocked by process {pid}.\n\tProcess {pid}: UPDATE a SET x = 1"
                 "\n\tProcess 4712: UPDATE b SET x = 1"),
      ("HINT", "See server log for query details."), ("STATEMENT", "UPDATE a SET x = 1")]),
    ("FATAL", "sorry, too many clients already", []),
    ("LOG", "disconnection: session time: 0:00:01.234 user=app database=shop host=10.0.0.7 port=51234", []),
    ("LOG", "checkpoint complete: wrote 914 buffers (5.6%); 0 WAL file(s) added, 0 removed, 0 recycled; "
            "write=0.017 s, sync=0.001 s, total=0.022 s; sync files=0, longest=0.000 s, average=0.000 s", []),
    ("LOG", 'automatic vacuum of table "shop.public.orders": index scans: 1\n\tpages: 0 removed, 12 remain\n\t'
            "system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.25 s", []),
    ("ERROR", 'duplicate key value violates unique constraint "orders_pkey"',
     [("DETAIL", "Key (id)=({n}) already exists."), ("STATEMENT", "INSERT INTO orders VALUES ({n})")]),
]
WEIGHTS = [8, 30, 3, 2, 2, 1, 1, 8, 1, 1, 3]


def _records(step_us: int = 7000):
    """(ts, pid, severity, message, attached), one each step_us, without end; the writers stop at their size."""
    seq = [i for i, w in enumerate(WEIGHTS) for _ in range(w)]
    i = 0
    while True:
        sev, msg, att = TEMPLATES[seq[i % len(seq)]]
        pid, n = 10000 + i % 5000, 700 + i
        ts = START + dt.timedelta(microseconds=i * step_us)
        fill = {"pid": pid, "n": n, "ms": f"{(i % 900) + 100.5:.3f}"}
        i += 1
        yield ts, pid, sev, msg.format(**fill), [(s, t.format(**fill)) for s, t in att]


def write_stderr(path: Path, n_bytes: int, step_us: int = 7000, end: dt.datetime | None = None) -> int:
    """Records until n_bytes (or `end`); returns how many."""
    with open(path, "w", buffering=1 << 20) as f:
        for i, (ts, pid, sev, msg, att) in enumerate(_records(step_us)):
            if f.tell() >= n_bytes or (end is not None and ts >= end):
                return i
            head = f"{ts:%Y-%m-%d %H:%M:%S}.{ts.microsecond // 1000:03d} UTC [{pid}] app@shop app=checkout_api "
            f.write(f"{head}{sev}:  {msg}\n")
            for s, t in att:
                f.write(f"{head}{s}:  {t}\n")
    return 0


def write_csv(path: Path, n_bytes: int, step_us: int = 7000, end: dt.datetime | None = None) -> int:
    """Rows until n_bytes (or `end`); returns how many."""
    with open(path, "w", newline="", buffering=1 << 20) as f:
        w = csv.writer(f)
        for i, (ts, pid, sev, msg, att) in enumerate(_records(step_us)):
            if (i % 1000 == 0 and f.tell() >= n_bytes) or (end is not None and ts >= end):
                return i
            a = dict(att)
            state = {"ERROR": "57014" if "timeout" in msg else "XX000", "FATAL": "53300"}.get(sev, "00000")
            if msg.startswith("deadlock"):
                state = "40P01"
            w.writerow([f"{ts:%Y-%m-%d %H:%M:%S}.{ts.microsecond // 1000:03d} UTC", "app", "shop", pid,
                        "10.0.0.7:51234", f"6b0e{pid:x}.1", i, "UPDATE", f"{ts:%Y-%m-%d %H:%M:%S} UTC", "3/7", 0, sev,
                        state, msg.replace("\n\t", "\n"), a.get("DETAIL", "").replace("\n\t", "\n"), a.get("HINT", ""),
                        "", "", a.get("CONTEXT", ""), a.get("STATEMENT", ""), "", "", "checkout_api",
                        "client backend", "", 0])


OURS = """
import resource, sys, time
from opsbook.logs import Problems, iter_events
t0 = time.perf_counter(); n = 0; kinds = {}
p = Problems()
for e in iter_events(sys.argv[1], prefix=sys.argv[2] or None, problems=p):
    n += 1; kinds[e.kind] = kinds.get(e.kind, 0) + 1
wall = time.perf_counter() - t0
use = resource.getrusage(resource.RUSAGE_SELF)
rss, cpu = use.ru_maxrss / 1024, use.ru_utime + use.ru_stime
import json; print(json.dumps({"wall_s": wall, "cpu_s": cpu, "events": n, "kinds": kinds, "problems": p.lines(),
                              "rss": rss}))
"""


def run_ours(path: Path, prefix: str) -> dict:
    out = subprocess.run([sys.executable, "-c", OURS, str(path), prefix], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout)
    res["peak_rss_mb"] = round(res.pop("rss"), 1)
    return res


def write_day(path: Path, n_bytes: int, writer) -> None:
    """A day of about n_bytes: one hour written record by record (its step sized from a sample), then written 24
    times, each with its hour in every timestamp."""
    sample = path.with_suffix(".sample")
    records = writer(sample, 2_000_000)
    per_record = sample.stat().st_size / max(records, 1)
    sample.unlink()
    step_us = max(int(3600e6 / (n_bytes / 24 / per_record)), 1000)
    hour = path.with_suffix(".hour")
    writer(hour, n_bytes // 24 + 1_000_000, step_us, START + dt.timedelta(hours=1))
    text = hour.read_bytes()
    hour.unlink()
    day = START.strftime("%Y-%m-%d ").encode()
    with open(path, "wb") as f:
        for h in range(24):
            f.write(text.replace(day + b"00:", day + f"{h:02d}:".encode()))


SEEK = """
import sys, time, datetime as dt
from opsbook.logs import Problems, iter_events
kw = {}
if sys.argv[3]:
    kw = {"since": dt.datetime.fromisoformat(sys.argv[3]), "until": dt.datetime.fromisoformat(sys.argv[4])}
t0 = time.perf_counter(); n = 0; p = Problems()
for e in iter_events(sys.argv[1], prefix=sys.argv[2] or None, problems=p, **kw):
    n += 1
import json; print(json.dumps({"wall_s": time.perf_counter() - t0, "events": n, "problems": p.lines()}))
"""


def run_seek(path: Path, prefix: str, window: tuple[dt.datetime, dt.datetime] | None) -> dict:
    since, until = (w.isoformat() for w in window) if window else ("", "")
    out = subprocess.run([sys.executable, "-c", SEEK, str(path), prefix, since, until], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def seek_rows(folder: Path, gb: float) -> list[dict]:
    """One hour (13:00-14:00) of a day of `gb` GB, read with the search, beside a full scan of the day."""
    rows = []
    window = (START + dt.timedelta(hours=13), START + dt.timedelta(hours=14))
    for fmt, writer, prefix in (("stderr", write_stderr, PREFIX), ("csvlog", write_csv, "")):
        path = folder / f"day.{'log' if fmt == 'stderr' else 'csv'}"
        free = shutil.disk_usage(folder).free
        if free < gb * 1e9 * 1.5:
            rows.append({"format": f"{fmt} (seek)", "skipped": f"{free / 1e9:.0f} GB free, {gb} GB needed"})
            continue
        try:
            t0 = time.perf_counter()
            write_day(path, int(gb * 1e9), writer)
            written = time.perf_counter() - t0
            hour = run_seek(path, prefix, window)
            full = run_seek(path, prefix, None)
            row = {"format": f"{fmt} (seek)", "gb": round(path.stat().st_size / 1e9, 2),
                   "write_s": round(written, 1), "hour_s": round(hour["wall_s"], 2), "hour_events": hour["events"],
                   "full_scan_s": round(full["wall_s"], 1), "full_events": full["events"],
                   "problems": hour["problems"] + full["problems"]}
        finally:
            path.unlink(missing_ok=True)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def run_pgbadger(path: Path, fmt_args: list[str], out_dir: Path) -> dict:
    if shutil.which("pgbadger") is None or not Path("/usr/bin/time").exists():
        return {"skipped": "pgbadger or /usr/bin/time not installed (apt-get install pgbadger time)"}
    cmd = ["/usr/bin/time", "-f", "%M %U %S", "pgbadger", "-q", "-j", "1", "--pid-dir", str(out_dir), *fmt_args,
           "-x", "json",
           "-o", str(out_dir / f"{path.name}.json"), str(path)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        return {"skipped": f"pgbadger failed: {out.stderr.strip()[-200:]}"}
    rss_kb, user, system = out.stderr.strip().splitlines()[-1].split()
    return {"wall_s": wall, "cpu_s": float(user) + float(system), "peak_rss_mb": round(int(rss_kb) / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200, help="0: no comparison with pgbadger (with --seek-gb alone)")
    ap.add_argument("--big-gb", type=float, default=0)
    ap.add_argument("--seek-gb", type=float, default=0, help="a day of this many GB: one hour read by seeking")
    ap.add_argument("--keep", type=Path, help="Generate into (and keep) this folder.")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="opsbook-logbench-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for fmt, name, writer, pg_args, prefix in (
                ("stderr", "postgresql.log", write_stderr, ["-f", "stderr", "-p", PREFIX], PREFIX),
                ("csvlog", "postgresql.csv", write_csv, ["-f", "csv"], "")) if args.mb else ():
            path = folder / name
            if not path.exists():
                writer(path, args.mb * 1_000_000)
            mb = path.stat().st_size / 1e6
            ours = run_ours(path, prefix)
            theirs = run_pgbadger(path, pg_args, folder)
            row = {"format": fmt, "mb": round(mb, 1), "events": ours["events"],
                   "opsbook_mb_s": round(mb / ours["wall_s"], 1), "opsbook_peak_rss_mb": ours["peak_rss_mb"],
                   "problems": ours["problems"]}
            if "wall_s" in theirs:
                row.update(pgbadger_mb_s=round(mb / theirs["wall_s"], 1), pgbadger_peak_rss_mb=theirs["peak_rss_mb"],
                           ratio=round(theirs["wall_s"] / ours["wall_s"], 2),
                           # CPU seconds of each process: the ratio a busy machine (other work between the two
                           # runs) moves least
                           cpu_ratio=round(theirs["cpu_s"] / ours["cpu_s"], 2))
            else:
                row["pgbadger"] = theirs["skipped"]
            rows.append(row)
            print(json.dumps(row), flush=True)
        if args.big_gb:
            big = folder / "big.log"
            write_stderr(big, int(args.big_gb * 1e9))
            ours = run_ours(big, PREFIX)
            row = {"format": "stderr (big)", "mb": round(big.stat().st_size / 1e6, 1), "events": ours["events"],
                   "opsbook_mb_s": round(big.stat().st_size / 1e6 / ours["wall_s"], 1),
                   "opsbook_peak_rss_mb": ours["peak_rss_mb"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
            big.unlink()
        if args.seek_gb:
            rows += seek_rows(folder, args.seek_gb)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / f"log_parse-{dt.datetime.now(dt.timezone.utc):%Y-%m-%d}.json"
    out.write_text(json.dumps({"rows": rows, "load_1m": os.getloadavg()[0]}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
