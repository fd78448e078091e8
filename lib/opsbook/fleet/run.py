"""`opsbook fleet`: validate first, run each target (local threads driving processes, or Dask tasks), write what
came back into the reports folder, summarise."""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..core.errors import UsageError

FAIL_ON = ("warning", "critical")
RANK = {"critical": 3, "warning": 2, "info": 1, "ok": 0}


@dataclass
class FleetResult:
    runbook: str
    rows: list[dict[str, Any]]
    started: dt.datetime
    duration_s: float
    summary_html: Path | None = None
    summary_json: Path | None = None
    fail_on: str | None = None
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if any(r["status"] != "ok" for r in self.rows):
            return 1
        if self.fail_on and any(RANK.get(r["worst"], 0) >= RANK[self.fail_on] for r in self.rows):
            return 3
        return 0

    def to_json(self) -> dict[str, Any]:
        targets = {}
        for r in self.rows:
            obj = dict(r["result"] or {"status": "failed", "runbook": self.runbook, "target": r["target"],
                                       "report_html": None, "notebook": None, "sidecar": None, "findings": [],
                                       "metrics": {}, "error": r["error"]})
            obj["worker"] = r["worker"]
            obj["duration_s"] = r["duration_s"]
            obj.update(attempts=r["attempts"], retried=r["retried"], attempt_log=r["attempt_log"])
            targets[r["target"]] = obj
        return {"runbook": self.runbook, "summary_html": str(self.summary_html) if self.summary_html else None,
                "summary_json": str(self.summary_json) if self.summary_json else None, "exit_code": self.exit_code,
                "totals": self.totals, "targets": targets}


def run_fleet(runbook: str, targets: list[str], params: dict[str, str], *, config, workers: int | None = None,
              scheduler: str | None = None, timeout_s: float = 600, fail_on: str | None = None,
              output_dir: Path | None = None, progress: Callable[[str], None] | None = None,
              insecure: bool = False) -> FleetResult:
    """Run `runbook` on each target; one failing target never stops the others. A Dask scheduler is tls:// with
    the [fleet] certificates, or plain tcp:// only with `insecure` (said on stderr and in the summary)."""
    from ..config import params as paramspec  # noqa: PLC0415
    from ..run.runner import runbook_path  # noqa: PLC0415

    if fail_on is not None and fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)}")
    if timeout_s <= 0:
        raise UsageError("--timeout-per-target must be a positive number of seconds")
    path = runbook_path(runbook)
    if "target" in params:
        raise UsageError("the targets are chosen with --targets, --all or --tag, not -p target=...")
    paramspec.coerce(paramspec.describe(path), dict(params))  # bad parameters: exit 2 before any target runs
    workers = workers or os.cpu_count() or 2
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    security = None
    if scheduler:
        from .wire import security as wire_security  # noqa: PLC0415

        security = wire_security(config, scheduler, insecure=insecure)  # refused: exit 2 before anything runs
    plain = bool(scheduler) and security is None
    root = Path(output_dir or config.reports_dir).absolute()
    _writable(root)
    if plain:
        from .wire import INSECURE_NOTE  # noqa: PLC0415

        print(f"opsbook: warning: {INSECURE_NOTE.format(address=scheduler)}", file=sys.stderr, flush=True)
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    t0 = time.perf_counter()
    say = progress or _progress_printer(len(targets))
    if scheduler:
        from .distributed import run_on_cluster  # noqa: PLC0415 - Dask only in distributed mode

        answers = run_on_cluster(scheduler, runbook, targets, params, security=security, timeout_s=timeout_s,
                                 fail_on=fail_on)
        rows = []
        for target, raw, earlier in answers:  # each answer lands as it comes: under the client's own name for it
            row = land_remote(raw, root, runbook=runbook, target=target, earlier=earlier)
            say(_line(row))
            rows.append(row)
    else:
        rows = _run_local(runbook, targets, params, config=config, workers=workers, timeout_s=timeout_s,
                          fail_on=fail_on, root=root, say=say)
    order = {t: i for i, t in enumerate(targets)}
    rows.sort(key=lambda r: order[r["target"]])
    result = FleetResult(runbook, rows, started, round(time.perf_counter() - t0, 2), fail_on=fail_on)
    from .summary import write_summary  # noqa: PLC0415

    write_summary(result, root, scheduler=scheduler, workers=workers, insecure=plain)
    return result


def _run_local(runbook, targets, params, *, config, workers, timeout_s, fail_on, root, say) -> list[dict]:
    """`workers` processes, each keeping a warm kernel ahead of its next target (opsbook.run.kernels.run_jobs): one
    run per kernel, a run past the timeout killed with its worker, a failure one row that never stops the rest. A
    run whose worker process died is run once more at once, in a worker of its own (as Dask does); its row keeps
    both attempts."""
    import socket  # noqa: PLC0415
    import threading  # noqa: PLC0415

    from ..report.record import STARTED_BY_ENV  # noqa: PLC0415
    from ..run.kernels.many import Job, run_jobs  # noqa: PLC0415

    set_here = STARTED_BY_ENV not in os.environ  # the workers (spawned: they copy this environment) run the fleet's
    if set_here:
        os.environ[STARTED_BY_ENV] = "fleet"
    host = socket.gethostname()
    rows, lock, index, retries = [], threading.Lock(), threading.Lock(), []
    jobs = [Job(runbook, t, dict(params), fail_on=fail_on) for t in targets]
    pool = max(1, min(workers, len(jobs)))
    t0, freed = time.monotonic(), []  # the pool hands jobs out in order: job k >= pool goes when a worker frees

    def finish(raw: dict[str, Any]) -> None:
        row = _land(raw)
        with lock:
            say(_line(row))
            rows.append(row)

    def retry(i: int, first: dict[str, Any]) -> None:
        started, raw = time.monotonic(), None
        try:
            for _, result, failure in _outcomes(run_jobs([jobs[i]], workers=1, config=config, output_dir=root,
                                                         timeout_s=timeout_s), 1, index):
                raw = _local_raw(targets[i], result, failure, host=host, timeout_s=timeout_s,
                                 elapsed=time.monotonic() - started)
        except Exception as e:  # noqa: BLE001 - the retry's failure is the target's row
            raw = raw or _local_raw(targets[i], None, f"{type(e).__name__}: {e}", host=host, timeout_s=timeout_s,
                                    elapsed=time.monotonic() - started)
        raw["attempt_log"] = [first, _attempt(raw, 2)]
        finish(raw)

    try:
        for i, result, failure in _outcomes(run_jobs(jobs, workers=pool, config=config, output_dir=root,
                                                     timeout_s=timeout_s), len(jobs), index):
            now = time.monotonic()
            handed_out = t0 if i < pool else (freed[i - pool] if i - pool < len(freed) else t0)
            freed.append(now)
            raw = _local_raw(targets[i], result, failure, host=host, timeout_s=timeout_s, elapsed=now - handed_out)
            if result is None and failure and failure.startswith(WORKER_DIED):
                thread = threading.Thread(target=retry, args=(i, _attempt(raw, 1)), name=f"opsbook-retry-{i}")
                thread.start()
                retries.append(thread)
                continue
            finish(raw)
    finally:
        for thread in retries:
            thread.join()
        if set_here:
            os.environ.pop(STARTED_BY_ENV, None)  # a caller in this process (a test, a script) is not a fleet
    return rows


def _outcomes(runs, n: int, index) -> Iterator[tuple[int, Any, str | None]]:
    """The `n` outcomes of a run_jobs generator, then its end (it refreshes the reports index) under the `index`
    lock: a retry's pool and the main one must not write the same index files from one process at once."""
    try:
        for _ in range(n):
            yield next(runs)
    finally:
        with index:
            runs.close()


WORKER_DIED = "its worker process died"  # run_jobs' words for a worker that exited during a run


def _local_raw(target: str, result, failure: str | None, *, host: str, timeout_s: float,
               elapsed: float) -> dict[str, Any]:
    """One local attempt as a raw outcome. A run that ended has its own duration (its sidecar's); one whose worker
    died or was killed is timed from when the pool handed it out (it started no sooner) until its end was seen."""
    if result is not None:
        obj = result.to_json()
        mem = getattr(result, "worker", None) or {}
        return {"target": target, "exit_code": result.exit_code, "result": obj, "files": {},
                "worker": f"{host}:{mem.get('pid', '?')}", "error": obj.get("error"),
                "duration_s": result.sidecar.get("duration_s", 0), "memory": mem}
    late = bool(failure) and "timed out" in failure
    return {"target": target, "exit_code": 1, "result": None, "files": {}, "worker": f"{host}", "error": failure,
            "duration_s": timeout_s if late else round(max(elapsed, 0.0), 1)}


def _attempt(raw: dict[str, Any], n: int) -> dict[str, Any]:
    """One line of a row's attempt log."""
    status = ((raw.get("result") or {}).get("status") if isinstance(raw.get("result"), dict) else None) or "failed"
    return {"attempt": n, "worker": raw.get("worker"), "status": status, "duration_s": raw.get("duration_s"),
            "error": raw.get("error")}


def config_text(config) -> str:
    """The configuration as TOML text for a child process on this machine (schedules); never sent to a Dask
    worker, which reads its own."""
    from ..run.runner import _config_file  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        return Path(_config_file(config, Path(tmp))).read_text()


def _land(raw: dict[str, Any]) -> dict[str, Any]:
    """A local run's outcome as a summary row; its sidecar (written here by our own child) records the worker."""
    result = raw.get("result")
    if result and result.get("sidecar"):
        _stamp_worker(Path(result["sidecar"]), raw["worker"])
    return _row(raw)


def land_remote(raw: Any, root: Path, *, runbook: str, target: str,
                earlier: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Dask task's answer as a summary row. The answer is untrusted: its files are written only under names the
    client makes (opsbook.fleet.landing), and no path in it is ever opened here. `earlier`: the attempts before this
    one, as the scheduler saw them (opsbook.fleet.distributed), never as the worker says."""
    from .landing import receive  # noqa: PLC0415

    raw = receive(raw, root, runbook=runbook, target=target)
    earlier = list(earlier or [])
    raw["attempt_log"] = [*earlier, _attempt(raw, len(earlier) + 1)]
    result = raw.get("result")
    if result and result.get("sidecar"):
        _stamp_worker(Path(result["sidecar"]), raw["worker"])
    return _row(raw)


def _row(raw: dict[str, Any]) -> dict[str, Any]:
    result = raw.get("result")
    findings = [f for f in (result or {}).get("findings") or [] if isinstance(f, dict)]
    counts = {s: 0 for s in RANK}
    for f in findings:
        if f.get("severity") in counts:
            counts[f["severity"]] += 1
    worst = max((f["severity"] for f in findings if f.get("severity") in RANK), key=RANK.get, default="ok")
    top = sorted((f for f in findings if RANK.get(f.get("severity"), 0) >= 2), key=lambda f: -RANK[f["severity"]])
    status = (result or {}).get("status") or "failed"
    log = raw.get("attempt_log") or [_attempt(raw, 1)]
    return {"target": raw["target"], "status": status, "worst": worst, "counts": counts, "top": top[:2],
            "metrics": (result or {}).get("metrics") or {}, "error": raw.get("error") or (result or {}).get("error"),
            "worker": raw["worker"], "duration_s": raw["duration_s"], "result": result,
            "report_html": (result or {}).get("report_html"), "attempts": len(log), "retried": len(log) > 1,
            "attempt_log": log}


def _stamp_worker(sidecar: Path, worker: str) -> None:
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    data["worker"] = worker
    tmp = sidecar.with_name(f".{sidecar.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, sidecar)


def _writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".opsbook-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"cannot write reports into {root}: {e.strerror}") from None


def _line(row: dict[str, Any]) -> str:
    from .summary import retry_note  # noqa: PLC0415

    tally = ", ".join(f"{n} {s}" for s, n in row["counts"].items() if n and s in ("critical", "warning"))
    what = "ran" if row["status"] == "ok" else f"FAILED: {row['error']}"
    return (f"{row['target']}: {what} in {row['duration_s']:.1f} s" + (f" ({tally})" if tally else "")
            + f" [{row['worker']}]" + (f"; {retry_note(row)}" if row["retried"] else ""))


def _progress_printer(total: int) -> Callable[[str], None]:
    """A tqdm bar on a terminal; one line per finished target otherwise (logs, cron, CI)."""
    if sys.stderr.isatty():
        from tqdm import tqdm  # noqa: PLC0415

        bar = tqdm(total=total, unit="target", file=sys.stderr)

        def tick(line: str) -> None:
            bar.write(line, file=sys.stderr)
            bar.update(1)
        return tick
    return lambda line: print(line, file=sys.stderr, flush=True)
