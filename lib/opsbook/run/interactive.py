"""A run stepped through in JupyterLab leaves a sidecar of its own, from its Runbook to its last cell.

A run starts when a cell makes a `Runbook` (the runbook's first cell; running it again starts the next run) and
ends in the cell that calls `rb.close()` (the last one). Its sidecar is written then, or when a cell raises while
it is going on (status "failed", or "interrupted"), or when the kernel stops before its end ("kernel stopped").
What the run records after that (a cell run again, a button's click) rewrites the same sidecar.
"""
from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..report import record as runrecord

LAB_ENV = "JPY_SESSION_NAME"  # jupyter_server sets it for the kernels of its sessions (the notebook's path)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # what ends a kernel when a shutdown request is not enough
_LOCK = threading.RLock()


@dataclass
class LabRun:
    """One run: its record file (every finding, metric and fact it recorded, with times) and what the sidecar says."""

    runbook: str
    target: str
    root: Path
    record: str
    declared: list[str]  # the names the parameters cell declares
    secrets: set[str]
    started: float
    ended: float
    rb_id: int
    parameters: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None
    closing: bool = False  # rb.close() was called in the cell running now: the run ends with it
    finished: bool = False  # its last cell ran (or it was stopped): a later error counts only where it recorded
    touched: bool = False  # the cell running now recorded into this run
    dirty: bool = False  # recorded since the sidecar was last written
    path: Path | None = None


_STATE: dict[str, Any] = {"run": None, "hooked": False, "in_cell": False, "cell_started": None}


def in_lab() -> bool:
    """A JupyterLab kernel not under the runner (the runner sets OPSBOOK_RUN_RECORD to its own file)."""
    run = _STATE["run"]
    record = os.environ.get(runrecord.ENV)
    return bool(os.environ.get(LAB_ENV)) and (record is None or (run is not None and record == run.record))


def attach(rb) -> None:
    """Called by every Runbook: in a Lab kernel, start a new run (ending the one before) whose records go to a
    file of its own. Under the runner or in plain Python without JupyterLab: nothing."""
    if not in_lab():
        return
    with _LOCK:
        _hook()
        before = _STATE["run"]
        if before is not None:
            if not before.finished:
                _stop(before, "incomplete", "a new run started (its Runbook was made again) before its last cell")
            elif before.dirty:
                _write(before)
            Path(before.record).unlink(missing_ok=True)  # no longer current: nothing more can join its record
        fd, path = tempfile.mkstemp(prefix="opsbook-lab-", suffix=".jsonl")
        os.close(fd)
        started = _STATE["cell_started"] if _STATE["in_cell"] else time.time()
        run = LabRun(rb.name, rb.target.name, Path(rb.config.reports_dir).absolute(), path, _declared(rb.name),
                     _secrets(rb.config), started, started, id(rb))
        run.parameters = _parameters(run, rb.params)
        _STATE["run"] = run
        os.environ[runrecord.ENV] = path
        begun = dt.datetime.fromtimestamp(started, tz=dt.timezone.utc)
        runrecord.use_artifact_stem(run.root / f"{begun:%Y-%m-%d}" / f"{run.runbook}--{run.target}--{begun:%H%M%S}Z")


def closed(rb) -> None:
    """Called by Runbook.close(): the run ends with the cell running now (at once outside IPython)."""
    run = _STATE["run"]
    if run is None or run.rb_id != id(rb) or not in_lab():
        return
    with _LOCK:
        run.closing = True
        if not _STATE["in_cell"]:
            _end(run)


# ------------------------------------------------------------------ the kernel's events
def _hook() -> None:
    if _STATE["hooked"]:
        return
    _STATE["hooked"] = True
    runrecord.listen(_recorded)
    atexit.register(_at_exit)
    from .cellcheck import user_namespace  # noqa: PLC0415

    if user_namespace() is not None:
        from IPython import get_ipython  # noqa: PLC0415

        get_ipython().events.register("pre_run_cell", _pre_run_cell)
        get_ipython().events.register("post_run_cell", _post_run_cell)
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:  # Jupyter's last resort before SIGKILL, a dropped terminal: write, then stop
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN:
                continue  # the kernel is meant to survive it
            signal.signal(signum, lambda n, frame, previous=previous: _on_signal(n, frame, previous))


def _pre_run_cell(info) -> None:
    _STATE["in_cell"], _STATE["cell_started"] = True, time.time()
    run = _STATE["run"]
    if run is not None:
        run.touched = False


def _post_run_cell(result) -> None:
    with _LOCK:
        _STATE["in_cell"] = False
        run = _STATE["run"]
        if run is None:
            return
        error = result.error_in_exec or result.error_before_exec
        if error is not None and (not run.finished or run.touched) and run.status == "ok":
            where = f"code cell [{result.execution_count}]" if result.execution_count else "a code cell"
            run.status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            run.error = f"{type(error).__name__}: {' '.join(str(error).split())} ({where})"
            run.dirty = True
        if not run.finished:
            run.ended = time.time()
        if run.closing:
            _end(run)
        elif run.dirty and (run.path is not None or run.status != "ok"):
            _write(run)


def _recorded(path: str, entry: dict[str, Any]) -> None:
    """A line went into a record file: when it is the current run's, its parameters are those in effect now, and
    a sidecar already written is rewritten (now, outside a cell, e.g. a button's click; else after the cell)."""
    run = _STATE["run"]
    if run is None or path != run.record:
        return
    with _LOCK:
        run.touched = run.dirty = True
        run.parameters = _parameters(run, run.parameters)
        if run.path is not None and not _STATE["in_cell"]:
            _write(run)


def _at_exit(reason: str | None = None, *, last: bool = True) -> None:
    """The kernel ends: a run not finished is written as stopped; `last`: its record file goes too."""
    run = _STATE["run"]
    if run is None:
        return
    with _LOCK:
        if not run.finished:
            if reason is None:
                shell = _shell()
                reason = ("the kernel was shut down" if shell is not None and getattr(shell, "exit_now", False)
                          else "the kernel exited")
            _stop(run, "kernel stopped", f"{reason} before the run's last cell")
        elif run.dirty:
            _write(run)
        if last:
            Path(run.record).unlink(missing_ok=True)


def _on_signal(signum: int, frame, previous) -> None:
    _at_exit(f"the kernel was stopped by {signal.Signals(signum).name}", last=not callable(previous))
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL if previous is None else previous)
    os.kill(os.getpid(), signum)


def _shell():
    from .cellcheck import user_namespace  # noqa: PLC0415

    if user_namespace() is None:
        return None
    from IPython import get_ipython  # noqa: PLC0415

    return get_ipython()


# ------------------------------------------------------------------ the run's end and its sidecar
def _end(run: LabRun) -> None:
    run.closing, run.finished, run.ended = False, True, time.time()
    _write(run)


def _stop(run: LabRun, status: str, reason: str) -> None:
    """The run ends before its last cell: a failure already recorded stays the status, its error comes first."""
    if run.status in ("ok", "interrupted"):
        run.status = status
    run.error = f"{run.error}; {reason}" if run.error else reason
    run.finished = True
    _write(run)


def _write(run: LabRun) -> Path | None:
    try:
        record = runrecord.read(run.record)
        started = dt.datetime.fromtimestamp(run.started, tz=dt.timezone.utc).replace(microsecond=0)
        remediation = [{"at": _iso(at), **f} for f, at in zip(record["findings"], record["found_at"])
                       if str(f.get("check", "")).startswith("remediation.") and _acted(f)]
        sidecar = {"runbook": run.runbook, "target": run.target, "status": run.status,
                   "started_at": _iso(run.started), "started_by": "lab",
                   "duration_s": round(max(run.ended - run.started, 0.0), 2),
                   "server_version_num": record["meta"].get("server_version_num"),
                   "parameters": run.parameters, "interactive": True, "notebook": os.environ.get(LAB_ENV),
                   "findings": record["findings"], "metrics": record["metrics"], "remediation": remediation,
                   "error": run.error}
        if run.path is None:
            run.path = _reserve(run.root, run.runbook, run.target, started)
        from ..config.paths import atomic_write_text  # noqa: PLC0415
        from ..core.redact import scrub_report  # noqa: PLC0415

        text = scrub_report(json.dumps(sidecar, indent=2, default=str) + "\n", run.secrets)[0]
        atomic_write_text(run.path, text)
        run.dirty = False
        from ..report.index import write_index  # noqa: PLC0415

        write_index(run.root)
        return run.path
    except Exception:  # noqa: BLE001 - a kernel shutting down must not print a traceback over the notebook
        return None


def _acted(finding: dict[str, Any]) -> bool:
    """A remediation that was attempted: done (value true) or failed (warning); not a dry run, not "none asked"."""
    severity = finding.get("severity")
    return severity != "ok" and (finding.get("value") is not False or severity == "warning")


def _reserve(root: Path, runbook: str, target: str, started: dt.datetime) -> Path:
    """reports/YYYY-MM-DD/<runbook>--<target>--HHMMSSZ.json, -2, -3... when taken (by the runner too)."""
    folder = root / started.strftime("%Y-%m-%d")
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{runbook}--{target}--{started:%H%M%S}Z"
    for n in range(1, 1000):
        stem = base if n == 1 else f"{base}-{n}"
        if (folder / f"{stem}.ipynb").exists():
            continue
        try:
            os.close(os.open(folder / f"{stem}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return folder / f"{stem}.json"
        except FileExistsError:
            continue
    raise OSError(f"too many runs of {runbook} on {target} in one second in {folder}")


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _declared(runbook: str) -> list[str]:
    from ..config import params as paramspec  # noqa: PLC0415
    from .runner import runbook_path  # noqa: PLC0415

    try:
        return [p.name for p in paramspec.describe(runbook_path(runbook))]
    except Exception:  # noqa: BLE001 - a runbook outside runbooks/: the Runbook's own params are recorded
        return []


def _parameters(run: LabRun, fallback: dict[str, Any]) -> dict[str, Any]:
    """The parameters cell's values in the kernel now (all it declares), the target the run uses; outside a
    kernel, the Runbook's own parameters."""
    from .cellcheck import user_namespace  # noqa: PLC0415

    ns = user_namespace()
    if ns is None or not run.declared:
        values = dict(fallback)
    else:
        values = {name: ns[name] for name in run.declared if name in ns}
    values = {"target": run.target, **{k: v for k, v in values.items() if k != "target"}}
    try:
        return json.loads(json.dumps(values, default=str))  # a copy: later edits in the kernel do not change it
    except ValueError:  # a value that refers to itself: keep what was known
        return run.parameters or {"target": run.target}


def _secrets(config) -> set[str]:
    from ..core.redact import known_secrets  # noqa: PLC0415

    try:
        return {s for s in known_secrets(config) if s}
    except Exception:  # noqa: BLE001 - nothing to scrub is better than no record
        return set()
