"""Distributed mode: each target's run is a task on an existing Dask cluster (`dask scheduler`, `dask worker`).

Dask does the cluster work (placement, a task whose worker dies goes to another one). A task carries the runbook's
name, one target's name and the parameters, nothing more: each worker reads the target's DSN and credentials from
its own configuration and environment. The task returns the report files as bytes, so workers need no shared disk;
the client lands them under names it makes itself (opsbook.fleet.landing). The connection is TLS with the [fleet]
certificates (opsbook.fleet.wire) unless the user chose --insecure.
"""
from __future__ import annotations

from typing import Any, Iterator

from ..core.errors import UsageError

CONNECT_TIMEOUT_S = 10


def run_on_cluster(address: str, runbook: str, targets: list[str], params: dict[str, str], *, security,
                   timeout_s: float, fail_on: str | None) -> Iterator[tuple[str, Any]]:
    """(target, the task's answer) as each finishes; the target is the client's own name for the task."""
    try:
        from distributed import Client, as_completed  # noqa: PLC0415
    except ImportError:
        raise UsageError("--scheduler needs Dask: pip install 'opsbook[fleet]' (dask[distributed])") from None
    from .task import run_target  # noqa: PLC0415

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, security=security)
    except (OSError, TimeoutError) as e:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {type(e).__name__}"
                         + (" (a tls:// scheduler takes certificates signed by its CA: [fleet] tls_cert, tls_key)"
                            if security is not None else "")) from None
    try:
        from .warm import NAME, WarmKernelPlugin  # noqa: PLC0415

        client.register_plugin(WarmKernelPlugin(), name=NAME)  # once per cluster; later workers get it too
        futures = {client.submit(run_target, runbook, t, dict(params), timeout_s=timeout_s, fail_on=fail_on,
                                 key=f"opsbook-{runbook}-{t}-{id(targets)}", pure=False, retries=1): t
                   for t in targets}
        for f in as_completed(futures):
            t = futures[f]
            try:
                raw = f.result()
            except Exception as e:  # noqa: BLE001 - a task that failed even after Dask's retries is one row
                raw = {"exit_code": 1, "result": None, "files": {}, "worker": "?",
                       "error": f"the task failed on the cluster: {type(e).__name__}: {e}"[:300], "duration_s": 0}
            yield t, raw
    finally:
        client.close()
