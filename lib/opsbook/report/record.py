"""The run record: findings and metrics a notebook hands to the runner, one JSON object per line.

The runner sets OPSBOOK_RUN_RECORD to a file before it starts the kernel; in JupyterLab each run gets a file of its
own (opsbook.run.interactive). Appending line by line means a notebook that fails half-way still leaves
everything it recorded before the failure. Each line carries the time it was recorded (`at`, epoch seconds).
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from ..core.findings import Finding, _jsonable

ENV = "OPSBOOK_RUN_RECORD"
_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_LISTENERS: list[Callable[[str, dict[str, Any]], None]] = []  # told of each line written: (file, entry)


def listen(callback: Callable[[str, dict[str, Any]], None]) -> None:
    """Call `callback(path, entry)` after each entry appended to a record file (a Lab run keeps its sidecar fresh)."""
    if callback not in _LISTENERS:
        _LISTENERS.append(callback)


def _append(entry: dict[str, Any]) -> None:
    path = os.environ.get(ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({**entry, "at": round(time.time(), 3)}, default=str) + "\n")
        for callback in _LISTENERS:
            callback(path, entry)


def record(name: str, value: Any) -> Any:
    """Record one number (or short value) under a snake_case name with its unit, e.g. database_size_bytes."""
    if not _METRIC_NAME.match(name):
        raise ValueError(f"metric name {name!r} must be snake_case, e.g. database_size_bytes")
    _append({"type": "metric", "name": name, "value": _jsonable(value)})
    return value


def record_findings(findings: Iterable[Finding]) -> None:
    for f in findings:
        _append({"type": "finding", **f.to_dict()})


def record_meta(**fields: Any) -> None:
    """Facts about the run the sidecar carries (server_version_num, simulated clock, ...)."""
    _append({"type": "meta", **{k: _jsonable(v) for k, v in fields.items()}})


def read(path: str | Path) -> dict[str, Any]:
    """{"findings": [...], "metrics": {...}, "meta": {...}, "found_at": [...]} from a record file (`found_at`: when
    each finding was recorded, epoch seconds or None); a missing file is empty."""
    out: dict[str, Any] = {"findings": [], "metrics": {}, "meta": {}, "found_at": []}
    p = Path(path)
    if not p.exists():
        return out
    for line in p.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a killed kernel
        kind = entry.pop("type", None)
        at = entry.pop("at", None)
        if kind == "metric":
            out["metrics"][entry["name"]] = entry["value"]
        elif kind == "finding":
            out["findings"].append(entry)
            out["found_at"].append(at)
        elif kind == "meta":
            out["meta"].update(entry)
    return out


STARTED_BY_ENV = "OPSBOOK_STARTED_BY"  # set by whatever launches `opsbook run`: the scheduler, a fleet
STARTED_BY = ("cli", "schedule", "fleet", "lab", "service")  # the sidecar's `started_by`; a person's: cli, lab, service


def started_by(environ: dict[str, str] | None = None, *, default: str = "cli") -> str:
    """What started a run, from OPSBOOK_STARTED_BY in `environ` (default: this process's), else `default`."""
    value = (os.environ if environ is None else environ).get(STARTED_BY_ENV, "").strip()
    if not value:
        return default
    if value not in STARTED_BY:
        from ..core.errors import UsageError  # noqa: PLC0415

        raise UsageError(f"{STARTED_BY_ENV}={value!r} is not one of {', '.join(STARTED_BY)}; unset it, or name "
                         "what starts the run")
    return value


STEM_ENV = "OPSBOOK_REPORT_STEM"
_LAB_STEM: dict[str, str] = {}  # the current JupyterLab run's stem in the reports folder (opsbook.run.interactive)


def use_artifact_stem(stem: str | Path | None) -> None:
    """In JupyterLab, files a run writes go beside its sidecar in the reports folder (never into runbooks/)."""
    if stem is None:
        _LAB_STEM.pop("stem", None)
    else:
        _LAB_STEM["stem"] = str(stem)


def artifact_path(suffix: str) -> Path:
    """Where a runbook writes a file beside its report: `<report stem><suffix>` (e.g. `.missing.csv`).

    Under the runner the stem is the report's own path without extension; in JupyterLab, the run's stem in the
    reports folder; elsewhere (plain Python), the working folder.
    """
    stem = os.environ.get(STEM_ENV) or _LAB_STEM.get("stem")
    path = Path(f"{stem}{suffix}") if stem else Path.cwd() / f"opsbook-artifact{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
