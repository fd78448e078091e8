"""Distributed mode: each target's run is a task on an existing Dask cluster (`dask scheduler`, `dask worker`).

Dask does the cluster work (placement, a task whose worker dies goes to another one); the task returns the report
files as bytes, so workers need no shared disk, and only the configuration (which never holds a password) travels.
"""
from __future__ import annotations

from typing import Any, Callable

from ..errors import UsageError

CONNECT_TIMEOUT_S = 10


def run_on_cluster(address: str, runbook: str, targets: list[str], params: dict[str, str], *, config_text: str,
                   timeout_s: float, fail_on: str | None, on_done: Callable[[dict], None]) -> list[dict[str, Any]]:
    try:
        from distributed import Client, as_completed  # noqa: PLC0415
    except ImportError:
        raise UsageError("--scheduler needs Dask: pip install 'opsbook[fleet]' (dask[distributed])") from None
    from .task import run_target  # noqa: PLC0415

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as e:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {type(e).__name__}") from None
    out = []
    try:
        from .warm import NAME, WarmKernelPlugin  # noqa: PLC0415

        client.register_plugin(WarmKernelPlugin(), name=NAME)  # once per cluster; later workers get it too
        futures = {client.submit(run_target, runbook, t, params, config_text=config_text, timeout_s=timeout_s,
                                 fail_on=fail_on, key=f"opsbook-{runbook}-{t}-{id(out)}", pure=False,
                                 retries=1): t for t in targets}
        for f in as_completed(futures):
            t = futures[f]
            try:
                raw = f.result()
            except Exception as e:  # noqa: BLE001 - a task that failed even after Dask's retries is one row
                raw = {"target": t, "exit_code": 1, "result": None, "files": {}, "worker": "?",
                       "error": f"the task failed on the cluster: {type(e).__name__}: {e}"[:300], "duration_s": 0}
            on_done(_preview(raw))
            out.append(raw)
    finally:
        client.close()
    return out


def _preview(raw: dict[str, Any]) -> dict[str, Any]:
    """Enough of a raw outcome for the progress line."""
    result = raw.get("result") or {}
    counts = {"critical": 0, "warning": 0}
    for f in result.get("findings") or []:
        if f.get("severity") in counts:
            counts[f["severity"]] += 1
    return {"target": raw["target"], "status": result.get("status") or "failed", "error": raw.get("error"),
            "counts": counts, "duration_s": raw.get("duration_s", 0), "worker": raw.get("worker")}
