"""Runs stepped through in JupyterLab leave a sidecar too: written into the reports folder when the kernel exits."""
from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import tempfile
import time
import weakref
from pathlib import Path

from ..report import record as runrecord

LAB_ENV = "JPY_SESSION_NAME"  # jupyter_server sets it for the kernels of its sessions (the notebook's path)
_OURS: dict[str, str] = {}  # the record file this module made for the kernel, if any


def in_lab() -> bool:
    """A JupyterLab kernel not under the runner (the runner sets OPSBOOK_RUN_RECORD to its own file)."""
    own = _OURS.get("record")
    record = os.environ.get(runrecord.ENV)
    return bool(os.environ.get(LAB_ENV)) and (record is None or record == own)


def attach(rb) -> None:
    """Called by every Runbook: in a Lab kernel, record what it finds and measures into a file of this kernel,
    and at exit write the sidecar (findings, metrics, remediation results, "interactive": true) beside the
    reports and refresh the index. Under the runner or in plain Python: nothing."""
    if not in_lab():
        return
    if "record" not in _OURS:
        fd, path = tempfile.mkstemp(prefix="opsbook-lab-", suffix=".jsonl")
        os.close(fd)
        _OURS["record"] = path
        os.environ[runrecord.ENV] = path
    ref = weakref.ref(rb)
    start = time.time()
    atexit.register(lambda: _write(ref, start))


def _write(ref, start: float) -> Path | None:
    rb = ref()
    path = _OURS.get("record")
    if rb is None or not path:
        return None
    try:
        record = runrecord.read(path)
        own = {f.check for f in rb.findings}
        started = dt.datetime.fromtimestamp(rb.started, tz=dt.timezone.utc).replace(microsecond=0)
        root = Path(rb.config.reports_dir).absolute()
        folder = root / started.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / f"{rb.name}--{rb.target.name}--{started:%H%M%S}Z"
        n = 2
        while stem.with_suffix(".json").exists():
            stem = folder / f"{rb.name}--{rb.target.name}--{started:%H%M%S}Z-{n}"
            n += 1
        sidecar = {"runbook": rb.name, "target": rb.target.name, "status": "ok",
                   "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "duration_s": round(time.time() - start, 2),
                   "server_version_num": record["meta"].get("server_version_num"),
                   "parameters": rb.params, "interactive": True, "notebook": os.environ.get(LAB_ENV),
                   "findings": [f for f in record["findings"] if f.get("check") in own] or
                               [f.to_dict() for f in rb.findings],
                   "metrics": record["metrics"], "error": None}
        out = stem.with_name(stem.name + ".json")
        out.write_text(json.dumps(sidecar, indent=1, default=str))
        from ..report.index import write_index  # noqa: PLC0415

        write_index(root)
        return out
    except Exception:  # noqa: BLE001 - a kernel shutting down must not print a traceback over the notebook
        return None
