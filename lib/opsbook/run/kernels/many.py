"""Many runs on N worker processes, each keeping one warm kernel ahead: the engine for fleet and schedule run-due."""
from __future__ import annotations

import multiprocessing
import os
import queue
import resource
from dataclasses import dataclass, field
import time
from pathlib import Path
from typing import Any, Callable, Iterator

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
    A job that failed in its worker raises RuntimeError; `run_jobs` reports it instead.
    """
    results: list = [None] * len(jobs)
    for n, (i, result, failure) in enumerate(run_jobs(jobs, workers=workers, config=config, output_dir=output_dir)):
        if failure:
            raise RuntimeError(f"run of {jobs[i].runbook} on {jobs[i].target} failed in its worker: {failure}")
        results[i] = result
        progress(f"[{n + 1}/{len(jobs)}] {jobs[i].runbook} on {jobs[i].target}: {result.sidecar['status']} in "
                 f"{result.sidecar['duration_s']:.1f} s -> {result.html_path}")
    return results


def run_jobs(jobs: list[Job], *, workers: int = 2, config=None, output_dir: Path | None = None,
             timeout_s: float | None = None) -> Iterator[tuple[int, Any, str | None]]:
    """Like run_many, but yields (job index, RunResult or None, failure or None) as runs finish, and never stops
    for one job: a run that raised in its worker, whose worker died, or that ran past `timeout_s` (its worker is
    killed; its kernel follows, ipykernel watches its parent) is a failure line, and a new worker takes over."""
    from ...config.file import load  # noqa: PLC0415
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

    def spawn():
        p = ctx.Process(target=_worker, args=(todo, done, undispatched, config, root), name="opsbook-worker",
                        daemon=False)
        p.start()
        return p

    procs = {p.pid: p for p in (spawn() for _ in range(count))}
    running: dict[int, tuple[int, float]] = {}  # worker pid -> (job index, started)
    finished: set[int] = set()
    try:
        while len(finished) < len(jobs):
            try:
                msg = done.get(timeout=0.5)
            except queue.Empty:
                msg = None
            if msg is not None and msg[0] == "start":
                running[msg[2]] = (msg[1], time.monotonic())
                continue
            if msg is not None:
                i, result, failure = msg
                running = {pid: v for pid, v in running.items() if v[0] != i}
                if i not in finished:
                    finished.add(i)
                    yield i, result, failure
                continue
            now = time.monotonic()
            for pid, (i, started) in list(running.items()):
                p = procs[pid]
                late = timeout_s is not None and now - started > timeout_s
                if not late and not p.is_alive():
                    p.join(timeout=1)  # its last words (the result) may still be on their way
                    if not done.empty():
                        break
                if late or not p.is_alive():
                    if p.is_alive():
                        p.kill()
                        p.join(timeout=10)
                    del running[pid]
                    finished.add(i)
                    todo.put(STOP)  # the dead worker's stop token is still queued; its stand-in needs one too
                    new = spawn()
                    procs[new.pid] = new
                    yield i, None, (f"timed out after {timeout_s:g} s (killed)" if late else
                                    f"its worker process died (exit {p.exitcode})")
            if not any(p.is_alive() for p in procs.values()) and len(finished) < len(jobs) and done.empty():
                raise RuntimeError("every worker process exited before the runs were done")
    finally:
        for p in procs.values():
            p.join(timeout=30)
            if p.is_alive():  # pragma: no cover - a stuck worker
                p.terminate()
                p.join(timeout=5)
        from ...report.index import write_index  # noqa: PLC0415

        write_index(root)


def _worker(todo, done, undispatched, config, root: Path) -> None:
    """One worker process: a pool of one warm kernel, refilled at each take while jobs remain, runs until told
    to stop (a spare kernel warming after the last job would only cost CPU and delay the worker's exit)."""
    from . import KernelPool  # noqa: PLC0415
    from ..runner import run_runbook  # noqa: PLC0415

    pool = KernelPool(size=1, refill=True, factory=True)  # kernels forked from one import: the CPU is the limit
    try:
        while True:
            item = todo.get()
            if item is STOP:
                break
            i, job = item
            done.put(("start", i, os.getpid()))  # the parent times the run from here
            with undispatched.get_lock():
                undispatched.value -= 1
                pool.refill = undispatched.value > 0
            try:
                result = run_runbook(job.runbook, job.target, job.params, config=config, output_dir=root,
                                     with_code=job.with_code, self_contained=job.self_contained,
                                     fail_on=job.fail_on, pool=pool, refresh_index=False)
                result.worker = memory(pool)
                done.put((i, result, None))
            except Exception as e:  # noqa: BLE001 - reported by the parent, with the job named
                done.put((i, None, f"{type(e).__name__}: {e}"))
                continue
            if result.exit_code in INTERRUPTED:
                break
    finally:
        pool.close()


def memory(pool=None) -> dict[str, Any]:
    """This process's peak resident memory and its largest kernel's (finished children, and the kernels the
    pool retired, which may still be on their way out), in MB."""
    to_mb = 1 / 1024  # ru_maxrss is in kB on Linux
    kernels_kb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, getattr(pool, "kernel_peak_kb", 0))
    return {"pid": os.getpid(),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * to_mb, 1),
            "kernel_max_rss_mb": round(kernels_kb * to_mb, 1)}
