"""Distributed mode: each target's run is a task on an existing Dask cluster (`dask scheduler`, `dask worker`).

Dask does the cluster work (placement, a task whose worker dies goes to another one). A task carries the runbook's
name, one target's name and the parameters, nothing more: each worker reads the target's DSN and credentials from
its own configuration and environment. The task returns the report files as bytes, so workers need no shared disk;
the client lands them under names it makes itself (opsbook.fleet.landing). The connection is TLS with the [fleet]
certificates (opsbook.fleet.wire) unless the user chose --insecure.

A task whose worker dies is run again by Dask on another worker; each attempt tells the scheduler when and where
it started (an event under a topic named for the task), and the client reads those events back, with the
scheduler's own record of the worker's removal, to show the earlier attempts in the summary. The dead worker's own
run is stopped and its files removed by opsbook.fleet.guard.
"""
from __future__ import annotations

import os
import sys
import uuid
from typing import Any, Iterator

from ..core.errors import UsageError

CONNECT_TIMEOUT_S = 10
CLOSE_TIMEOUT_S = 30
ATTEMPT_TOPIC = "opsbook-attempt "  # + the task's key: one short topic per task on the scheduler


def run_on_cluster(address: str, runbook: str, targets: list[str], params: dict[str, str], *, security,
                   timeout_s: float, fail_on: str | None) -> Iterator[tuple[str, Any, list[dict[str, Any]]]]:
    """(target, the task's answer, the attempts before the one that answered) as each finishes; the target is the
    client's own name for the task."""
    try:
        from distributed import Client, as_completed  # noqa: PLC0415
    except ImportError:
        raise UsageError("--scheduler needs Dask: pip install 'opsbook[fleet]' (dask[distributed])") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, security=security)
    except (OSError, TimeoutError) as e:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {type(e).__name__}"
                         + (" (a tls:// scheduler takes certificates signed by its CA: [fleet] tls_cert, tls_key)"
                            if security is not None else "")) from None
    futures: dict = {}
    try:
        from .warm import NAME, WarmKernelPlugin  # noqa: PLC0415

        client.register_plugin(WarmKernelPlugin(), name=NAME)  # once per cluster; later workers get it too
        fleet = uuid.uuid4().hex[:12]  # keys (and so attempt topics) of this fleet alone, on a shared scheduler
        futures = {client.submit(run_task, runbook, t, dict(params), timeout_s=timeout_s, fail_on=fail_on,
                                 key=f"opsbook-{runbook}-{t}-{fleet}", pure=False, retries=1): t
                   for t in targets}
        for f in as_completed(futures):
            t = futures[f]
            tries = attempts(client, f.key)
            try:
                raw = f.result()
            except Exception as e:  # noqa: BLE001 - a task that failed even after Dask's retries is one row
                last = tries[-1] if tries else {}
                raw = {"exit_code": 1, "result": None, "files": {}, "worker": last.get("worker") or "?",
                       "error": f"the task failed on the cluster: {type(e).__name__}: {e}"[:300],
                       "duration_s": last.get("duration_s") or 0}
            yield t, raw, tries[:-1]
    finally:
        close(client, futures)


def close(client, futures) -> None:
    """Release the futures while the client's event loop still runs, then close the client and its loop. A future
    released later (when the generator's frame goes, at exit) would call into a loop that is shutting down."""
    for f in futures:
        f.release()
    futures.clear()
    try:
        client.close(timeout=CLOSE_TIMEOUT_S)
    except (OSError, TimeoutError) as e:  # a scheduler gone meanwhile: the results are in already
        print(f"opsbook: warning: the Dask client did not close cleanly: {type(e).__name__}", file=sys.stderr,
              flush=True)


def run_task(runbook: str, target: str, params: dict[str, str], *, timeout_s: float, fail_on: str | None):
    """On a Dask worker: say that this attempt starts here, then run the target (opsbook.fleet.task)."""
    from distributed import get_worker  # noqa: PLC0415

    from . import task  # noqa: PLC0415 - looked up at each call: a worker's preload may stand in for run_target

    worker = get_worker()
    worker.log_event(ATTEMPT_TOPIC + str(worker.get_current_task()), {"worker": worker.address, "pid": os.getpid()})
    return task.run_target(runbook, target, params, timeout_s=timeout_s, fail_on=fail_on)


def attempts(client, key: str) -> list[dict[str, Any]]:
    """Every attempt of task `key` so far, from the scheduler's events: where each started, and how long it ran
    until the scheduler removed its worker (it died) or the next attempt started (the task raised; Dask retried)."""
    from .landing import _text  # noqa: PLC0415

    try:
        starts = sorted(client.get_events(ATTEMPT_TOPIC + key), key=lambda e: e[0])
    except Exception:  # noqa: BLE001 - a scheduler that cannot say: no history, the row still stands
        return []
    out = []
    for n, (when, msg) in enumerate(starts, 1):
        worker = _text(msg.get("worker") if isinstance(msg, dict) else "?", 200)
        removed = _removed_at(client, worker, key, after=when) if len(starts) > 1 else None  # one: it answered
        end = removed if removed is not None else (starts[n][0] if n < len(starts) else None)
        out.append({"attempt": n, "worker": worker, "status": "failed",
                    "duration_s": round(end - when, 1) if end is not None else None,
                    "error": f"its worker {worker} died" if removed is not None else "the task failed on its worker"})
    return out


def _removed_at(client, worker: str, key: str, *, after: float) -> float | None:
    """When the scheduler removed `worker` while it ran `key` (its "remove-worker" event), or None."""
    try:
        events = client.get_events(worker)
    except Exception:  # noqa: BLE001
        return None
    for when, msg in events:
        if when >= after and isinstance(msg, dict) and msg.get("action") == "remove-worker" and \
                key in (msg.get("processing-tasks") or ()):
            return when
    return None
