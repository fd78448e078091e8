"""Landing a Dask task's answer on the client: the answer is untrusted input from the cluster.

A worker (or whoever stands in for one) chooses every byte it returns, file names included. The client therefore
writes only names it makes itself, `<day>/<runbook>--<target>--HHMMSSZ<suffix>` inside its reports folder, from the
runbook and target it asked for and its own clock; a received name only says which of the known suffixes a file
is, and must be a plain file name (no separator, no `..`, not absolute). Any other name refuses the whole answer.
"""
from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path
from typing import Any

from .task import SUFFIXES

BY_LENGTH = sorted(SUFFIXES, key=len, reverse=True)  # ".missing.csv" before a shorter suffix it ends with
PATH_KEYS = (("report_html", ".html"), ("notebook", ".ipynb"), ("sidecar", ".json"))


def receive(raw: Any, root: Path, *, runbook: str, target: str) -> dict[str, Any]:
    """The answer as a raw outcome with the client's target name, its files written under the client's names and
    the result's paths pointing at them (or None); a refused answer becomes a failed outcome that says why."""
    raw = raw if isinstance(raw, dict) else {}
    out = {"target": target, "worker": _text(raw.get("worker") or "?", 200), "duration_s": _seconds(raw),
           "exit_code": raw.get("exit_code") if isinstance(raw.get("exit_code"), int) else 1,
           "error": _text(raw["error"], 300) if raw.get("error") else None, "files": {}, "result": None}
    result = raw.get("result")
    if not isinstance(result, dict):
        out["error"] = out["error"] or "the cluster sent no result"
        return out
    files = raw.get("files") or {}
    refused = _refused(files)
    if refused:
        shown = ", ".join(repr(n) for n in refused[:3])
        out["error"] = _text(f"refused the answer of worker {out['worker']}: file names opsbook did not make: {shown}",
                             300)
        return out
    result = {k: v for k, v in result.items() if k not in {key for key, _ in PATH_KEYS}}
    result.update({key: None for key, _ in PATH_KEYS})
    if files:
        written = _write(files, root, runbook, target)
        result.update({key: str(written[s]) for key, s in PATH_KEYS if s in written})
    if not isinstance(result.get("metrics"), dict):
        result["metrics"] = {}
    if not isinstance(result.get("findings"), list):
        result["findings"] = []
    if result.get("error") is not None:
        result["error"] = _text(result["error"], 300)
    out["result"] = result
    return out


def suffix_of(name: Any) -> str | None:
    """The known suffix of a plain file name, else None (a path, `..`, a control character, an unknown kind)."""
    if not isinstance(name, str) or not name.isprintable() or "/" in name or "\\" in name or name in (".", ".."):
        return None
    return next((s for s in BY_LENGTH if name.endswith(s) and len(name) > len(s)), None)


def _refused(files: Any) -> list[Any]:
    if not isinstance(files, dict):
        return ["(not a table of files)"]
    seen, refused = set(), []
    for name, data in files.items():
        suffix = suffix_of(name)
        if suffix is None or suffix in seen or not isinstance(data, bytes):
            refused.append(name)
        seen.add(suffix)
    return refused


def _write(files: dict[str, bytes], root: Path, runbook: str, target: str) -> dict[str, Path]:
    """Each file under root/<day>/<runbook>--<target>--HHMMSSZ (another number if taken), never following a link."""
    from ..report.html import ensure_shared_plotly  # noqa: PLC0415
    from ..run.runner import reserve_stem  # noqa: PLC0415

    stem = reserve_stem(root, runbook, target, dt.datetime.now(dt.timezone.utc))  # reserves <stem>.ipynb
    folder = stem.parent.resolve()
    if not folder.is_relative_to(root.resolve()):  # runbook and target names are the client's own: never
        raise ValueError(f"{folder} is outside {root}")  # pragma: no cover
    written = {}
    for name, data in files.items():
        suffix = suffix_of(name)
        path = folder / f"{stem.name}{suffix}"
        mode = 0o600 if suffix.endswith((".csv", ".sql")) else 0o644
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        written[suffix] = path
    if ".ipynb" not in written:
        (folder / f"{stem.name}.ipynb").unlink(missing_ok=True)  # the reservation, when no notebook came back
    if ".html" in written:
        ensure_shared_plotly(root)  # the report loads ../plotly-<version>.min.js from the reports folder
    return written


def _text(value: Any, limit: int) -> str:
    """One printable line (it reaches the terminal and the summary): control characters become '?'."""
    return "".join(c if c.isprintable() else "?" for c in str(value))[:limit]


def _seconds(raw: dict[str, Any]) -> float:
    v = raw.get("duration_s")
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else 0.0
