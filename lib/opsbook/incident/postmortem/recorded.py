"""The demo's recorded incident, for its post-mortem: played on the demo database while a Watcher samples it, and
remembered (its start and end) beside the embedded server, so the demo's post-mortem reads that window."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from ...database.demo.incident import DEMO_NOTE, DEMO_ROLE, Incident, run_incident

__all__ = ["DEMO_NOTE", "PADDING_S", "ensure_recorded", "recorded_between", "save_record"]


def ensure_recorded(rb, window) -> Incident | None:
    """On the demo target: play the incident on the demo database while a Watcher samples it, unless the
    history already holds one in `window` (or the window is over). Elsewhere: nothing (returns None)."""
    if not getattr(rb.target, "embedded", False) or window.end.timestamp() < time.time() - 60:
        return None
    from ...history import open_store  # noqa: PLC0415
    from ..watch import Watcher, read_samples  # noqa: PLC0415
    from ..watch.store import ensure_table  # noqa: PLC0415

    store = open_store(rb.config)
    try:
        ensure_table(store.engine)
        recent = read_samples(store.engine, rb.target.name, window.start.timestamp(), window.end.timestamp() + 60)
        if any((s.get("detail") or {}).get("roots") for s in recent):
            return None
        w = Watcher(rb.config, [rb.target.name], store=store, every_s=0.2, echo=lambda line: None)
        w.tick(rb.target.name)
        time.sleep(1.0)
        from ...database.session import conninfo_of  # noqa: PLC0415

        conninfo = conninfo_of(rb.target)
        inc = run_incident(conninfo, storm_role=DEMO_ROLE, on_tick=lambda: w.tick(rb.target.name))
        time.sleep(0.5)
        w.tick(rb.target.name)
        for s in w.sessions.values():
            s.close()
        save_record(inc.start, time.time(), rb.config.history_url)  # the last sample is part of the recording
        return inc
    finally:
        store.close()


# The demo's post-mortem runs on the recorded incident's own window, not on `now-10m`: the window of the
# parameters also holds the demo's build (its temp files, its errors) and the other runbooks' runs.
RECORD_FILE = "demo-incident.json"  # beside the embedded server's data directory
RECORD_KEEP = 20  # incidents remembered (a demo replayed day after day)
PADDING_S = 2.0  # context around the recorded incident: its first sample is taken 1 s before it starts


def record_path() -> Path:
    from ...database.embedded import default_server  # noqa: PLC0415

    return default_server().data_dir.parent / RECORD_FILE


def save_record(start: float, end: float, history_url: str) -> None:
    """Remember [start, end] (epoch seconds) of an incident played on the demo server, sampled into the history
    store `history_url` names (kept as a digest: a URL may hold a password)."""
    from ...config.paths import atomic_write_text  # noqa: PLC0415

    path = record_path()
    kept = [r for r in _read_records(path) if r["start"] != start][-(RECORD_KEEP - 1):]
    new = {"start": start, "end": end, "history": _digest(history_url)}
    atomic_write_text(path, json.dumps({"incidents": [*kept, new]}) + "\n")


def recorded_between(start: float, end: float, history_url: str) -> tuple[float, float] | None:
    """(start, end) of the latest demo incident within [start, end] (epoch seconds) whose samples went to the
    history store `history_url` names (another store holds another incident's samples, or none)."""
    inside = [r for r in _read_records(record_path()) if start <= r["start"] and r["end"] <= end
              and r.get("history") == _digest(history_url)]
    return (inside[-1]["start"], inside[-1]["end"]) if inside else None


def _digest(url: str) -> str:
    return hashlib.sha256(str(url).encode()).hexdigest()[:16]


def _read_records(path: Path) -> list[dict]:
    try:
        items = json.loads(path.read_text()).get("incidents", [])
    except (OSError, ValueError, AttributeError):
        return []  # none yet, or unreadable: the post-mortem keeps the window it was given
    return sorted((r for r in items if isinstance(r, dict) and isinstance(r.get("start"), (int, float))
                   and isinstance(r.get("end"), (int, float)) and r["end"] > r["start"]),
                  key=lambda r: r["start"])
