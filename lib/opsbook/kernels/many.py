"""Many runs on N worker processes, each keeping one warm kernel ahead: the engine for fleet and schedule run-due."""
from __future__ import annotations

import multiprocessing
import os
import queue
import resource
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

STOP = None
INTERRUPTED = (130, 143)  # a worker whose run was stopped by a signal takes no further job


@dataclass
class Job:
    """One run: what `opsbook run RUNBOOK --target T -p ...` would do."""

    runbook: str
    target: str = "demo"
    params: dict[str, Any] = field(default_factory=dict)
    with_code: bool = False
    self_contained: bool = False
    fail_on: str | None = None


def run_many(jobs: list[Job], *, workers: int = 2, config=None, output_dir: Path | None = None,
             progress: Callable[[str], None] = lambda line: None) -> list:
    """Run every job, at most `workers` at a time, each in a fresh kernel; RunResults in the jobs' order.

    Every job is validated first (a UsageError, exit 2, before anything runs). Processes, not threads: papermill
    runs cannot share a process. Each worker starts its next kernel while the current run executes, so a run
    rarely waits for a kernel. The index is refreshed once, at the end. Each result's `worker` says which
    process ran it and its memory: {"pid", "max_rss_mb" (the worker), "kernel_max_rss_mb" (its largest kernel)}.
    """
    from ..config import load  # noqa: PLC0415
    from ..runner import check_run  # noqa: PLC0415

    config = config or load()
    for job in jobs:
        check_run(job.runbook, job.target, job.params, config=config, fail_on=job.fail_on)
    root = Path(output_dir or config.reports_dir).absolute()
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited threads, loops or sockets
    todo, done = ctx.Queue(), ctx.Queue()
    undispatched = ctx.Value("i", len(jobs))  # a worker warms a next kernel only while jobs remain
    for i, job in enumerate(jobs):
        todo.put((i, job))
    count = max(1, min(workers, len(jobs)))
    for _ in range(count):
        todo.put(STOP)
    procs = [ctx.Process(target=_worker, args=(todo, done, undispatched, config, root), name=f"opsbook-worker-{n}", daemon=False)
             for n in range(count)]
    for p in procs:
        p.start()
    results: list = [None] * len(jobs)
    try:
        for n in range(len(jobs)):
            i, result, failure = _next(done, procs)
            if failure:
                raise RuntimeError(f"run of {jobs[i].runbook} on {jobs[i].target} failed in its worker: {failure}")
            results[i] = result
            progress(f"[{n + 1}/{len(jobs)}] {jobs[i].runbook} on {jobs[i].target}: {result.sidecar['status']} in "
                     f"{result.sidecar['duration_s']:.1f} s -> {result.html_path}")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():  # pragma: no cover - a stuck worker
                p.terminate()
                p.join(timeout=5)
    from ..report_index import write_index  # noqa: PLC0415

    write_index(root)
    return results


def _next(done, procs):
    """The next finished run; an error if every worker died without reporting."""
    while True:
        try:
            return done.get(timeout=1)
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                raise RuntimeError("every worker process exited before the runs were done") from None


def _worker(todo, done, undispatched, config, root: Path) -> None:
    """One worker process: a pool of one warm kernel, refilled at each take while jobs remain, runs until told
    to stop (a spare kernel warming after the last job would only cost CPU and delay the worker's exit)."""
    from ..kernels import KernelPool  # noqa: PLC0415
    from ..runner import run_runbook  # noqa: PLC0415

    pool = KernelPool(size=1, refill=True)
    try:
        while True:
            item = todo.get()
            if item is STOP:
                break
            i, job = item
            with undispatched.get_lock():
                undispatched.value -= 1
                pool.refill = undispatched.value > 0
            try:
                result = run_runbook(job.runbook, job.target, job.params, config=config, output_dir=root,
                                     with_code=job.with_code, self_contained=job.self_contained,
                                     fail_on=job.fail_on, pool=pool, refresh_index=False)
                result.worker = memory()
                done.put((i, result, None))
            except Exception as e:  # noqa: BLE001 - reported by the parent, with the job named
                done.put((i, None, f"{type(e).__name__}: {e}"))
                continue
            if result.exit_code in INTERRUPTED:
                break
    finally:
        pool.close()


def memory() -> dict[str, Any]:
    """This process's peak resident memory and its largest finished child's (the kernels), in MB."""
    to_mb = 1 / 1024  # ru_maxrss is in kB on Linux
    return {"pid": os.getpid(),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * to_mb, 1),
            "kernel_max_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * to_mb, 1)}
