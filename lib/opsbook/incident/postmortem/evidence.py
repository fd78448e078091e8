"""Everything the period left behind: activity samples, snapshots, the server log, opsbook's own report sidecars."""
from __future__ import annotations

import heapq
import itertools
import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .window import Window

MAX_EVENTS = 5000  # notable log events kept for the tables (all are counted)
QUIET_KINDS = {"other", "connection", "disconnection"}  # counted per minute, not kept one by one
ERROR_SEVERITIES = {"ERROR", "FATAL", "PANIC"}
SECOND_BUCKETS_S = 120  # a padded window this short (the demo's incident) is counted per second, not per minute


@dataclass
class LogEvidence:
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    events: list = field(default_factory=list)  # notable events in the padded window (capped)
    counts: dict[str, int] = field(default_factory=dict)  # by kind, inside the incident window
    padded_counts: dict[str, int] = field(default_factory=dict)
    per_minute: dict[datetime, dict[str, int]] = field(default_factory=dict)  # bucket -> {kind | "errors": n}
    bucket_s: int = 60  # per_minute's buckets: a minute, or a second for a window of seconds (SECOND_BUCKETS_S)
    baseline_errors: int = 0
    baseline_minutes: float = 0.0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    apps: dict[int, str] = field(default_factory=dict)  # pid -> application, from any line that names it
    prefix_text: str = ""  # which log_line_prefix read the stderr files, and why (for the report)
    left_out: list[str] = field(default_factory=list)  # left out on purpose: opsbook's own sessions' events
    how_read: list[str] = field(default_factory=list)  # files read otherwise than by seeking to the window, and why
    error: str | None = None

    @property
    def read(self) -> bool:
        return bool(self.files) and self.error is None


@dataclass
class Evidence:
    target: str
    window: Window
    samples: list[dict] = field(default_factory=list)
    snapshots: Any = None  # DataFrame
    statements: Any = None  # statement deltas in the window
    baseline_statements: Any = None
    baseline_hours: float = 0.0
    log: LogEvidence = field(default_factory=LogEvidence)
    sidecars: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok_samples(self) -> list[dict]:
        return [s for s in self.samples if s["status"] == "ok"]


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def read_log(path, window: Window, *, baseline_days: float = 7, prefix: str | None = None,
             prefix_origin: str = "given", log_timezone: str | None = None) -> LogEvidence:
    """Read the padded window of the log (found by seeking: a window of a 10 GB day reads that window), keep its
    notable events (capped), count them per kind and minute; and the error rate of "normal" from samples of as
    long before it (the span just before, and the same hours on each of the `baseline_days` days before)."""
    from ...logs import LogSourceError, Problems, plan  # noqa: PLC0415
    from ...logs.executions import is_phase  # noqa: PLC0415

    ev = LogEvidence(bucket_s=1 if (window.after - window.before).total_seconds() <= SECOND_BUCKETS_S else 60)
    problems = Problems()
    try:
        files = plan(path, problems=Problems())  # each stderr file with the prefix detected from its lines
    except LogSourceError as e:
        ev.error = str(e)
        return ev
    ev.files = [str(f.path) for f in files]
    chosen, ev.prefix_text = choose_prefixes(files, prefix, prefix_origin)
    # opsbook's own sessions are not the incident's; the server's zone reads the timestamps' abbreviations
    for e in _events(path, files, chosen, prefix, window.before, window.after, problems, log_timezone):
        if is_phase(e):  # a parse or bind phase: its execute is the statement, counted once per execution
            e.kind = "other"
        ts = e.ts
        ev.first_ts = ev.first_ts or ts
        ev.last_ts = ts
        if e.pid is not None and e.application and e.pid not in ev.apps:
            ev.apps[e.pid] = e.application
        elif e.pid is not None and e.kind == "connection" and "application_name=" in e.message:
            ev.apps.setdefault(e.pid, e.message.split("application_name=", 1)[1].split()[0])
        ev.padded_counts[e.kind] = ev.padded_counts.get(e.kind, 0) + 1
        minute = ts.replace(microsecond=0) if ev.bucket_s == 1 else ts.replace(second=0, microsecond=0)
        bucket = ev.per_minute.setdefault(minute, {})
        bucket[e.kind] = bucket.get(e.kind, 0) + 1
        if e.severity in ERROR_SEVERITIES:
            bucket["errors"] = bucket.get("errors", 0) + 1
        if window.inside(ts):
            ev.counts[e.kind] = ev.counts.get(e.kind, 0) + 1
        if e.kind not in QUIET_KINDS and len(ev.events) < MAX_EVENTS:
            ev.events.append(e)
    for since, until in baseline_spans(window, baseline_days):
        first = last = None
        for e in _events(path, files, chosen, prefix, since, until, Problems(), log_timezone):
            first, last = first or e.ts, e.ts
            if e.severity in ERROR_SEVERITIES:
                ev.baseline_errors += 1
        if first is not None:
            ev.baseline_minutes += (last - first).total_seconds() / 60
    ev.problems = problems.lines()
    ev.left_out = problems.notes()
    ev.how_read = [f"{source}: {how}" for source, how in problems.said.items()]
    return ev


def baseline_spans(window: Window, baseline_days: float) -> list[tuple[datetime, datetime]]:
    """Where "normal" is sampled, never further back than `baseline_days`: the padded window's length just before
    it, and the padded window's hours on each whole day before (a daily rhythm compared with itself). Each is
    found by seeking, so the baseline costs a few windows' reading, not the days of log before the incident."""
    length = window.after - window.before
    oldest = window.before - timedelta(days=baseline_days)
    spans = [(max(window.before - length, oldest), window.before)] if baseline_days > 0 else []
    for day in range(1, int(baseline_days) + 1):
        spans.append((window.before - timedelta(days=day), window.after - timedelta(days=day)))
    return [(a, min(b, window.before)) for a, b in spans if a < min(b, window.before)]


def _events(path, files, chosen: dict, prefix: str | None, since, until, problems, log_timezone):
    """The log's events from `since` to `until`, opsbook's own sessions left out, each stderr file read with the
    prefix chosen for it."""
    from ...logs import iter_events  # noqa: PLC0415

    ranges = {"since": since, "until": until, "problems": problems, "own": False, "log_timezone": log_timezone}
    used = set(chosen.values()) or {prefix}
    if prefix is None or len(used) == 1:  # one prefix for every file (None: each its detected one), one merge
        return iter_events(path, prefix=None if prefix is None else next(iter(used)), **ranges)
    # files written with different prefixes: each read with its own, merged in time order
    return heapq.merge(*(iter_events(f.path, fmt=f.fmt, prefix=chosen.get(f.path), **ranges) for f in files),
                       key=lambda e: e.ts)


def choose_prefixes(files, prefix: str | None, origin: str) -> tuple[dict, str]:
    """({stderr file path: the log_line_prefix to read it with}, what the report says about it).

    The given prefix (a parameter, or the target's current SHOW log_line_prefix) is kept for a file where it
    matches at least half of the lines that look like records; elsewhere the log was written with another prefix
    (changed since, or another server's), and the reader's detection picks one from the file's lines."""
    out: dict = {}
    said: dict[str, list[str]] = {}
    for f in files:
        if f.fmt != "stderr":
            continue
        if prefix is None:
            out[f.path] = f.prefix
            why = "detected from the log's lines" if f.prefix is not None else None
        else:
            hits, records = _prefix_matches(f.path, prefix)
            if hits * 2 >= records:
                out[f.path], why = prefix, f"from {origin}"
            else:
                out[f.path] = f.prefix
                why = (f"detected from the log's lines: {prefix!r} ({origin}) matches {hits} of the first "
                       f"{records} records" if f.prefix is not None else None)
        text = (f"{out[f.path]!r}, {why}" if why else
                "none recognised: timestamps, pids and severities only (give log_line_prefix)")
        said.setdefault(text, []).append(Path(f.path).name)
    if len(said) == 1:
        return out, next(iter(said))
    return out, "; ".join(f"{text} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
                          for text, names in said.items())


def _prefix_matches(path, prefix: str) -> tuple[int, int]:
    """(lines the prefix matches, lines that look like records) among the first lines of a stderr log."""
    from ...logs.prefix import GENERIC, compile_prefix  # noqa: PLC0415
    from ...logs.sources import SNIFF_LINES, open_text  # noqa: PLC0415

    rx, hits, records = compile_prefix(prefix), 0, 0
    try:
        with open_text(Path(path)) as f:
            for line in itertools.islice(f, SNIFF_LINES):
                if line.startswith("\t") or not line.strip() or not GENERIC.match(line):
                    continue
                records += 1
                hits += rx.match(line) is not None
    except (OSError, EOFError, ValueError, zlib.error):
        pass  # unreadable here: the reader says so
    return hits, records


def read_sidecars(reports_dir: Path, target: str, window: Window) -> list[dict]:
    """opsbook's own runs of the padded window on this target: who ran what, what it found, what it changed."""
    out = []
    days = {(window.before + timedelta(days=i)).strftime("%Y-%m-%d")
            for i in range((window.after - window.before).days + 2)}
    for day in sorted(days):
        for path in sorted((reports_dir / day).glob("*.json")):
            try:
                d = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(d, dict) or d.get("target") != target or d.get("runbook") == "post-mortem":
                continue
            try:
                started = datetime.fromisoformat(str(d.get("started_at", "")).replace("Z", "+00:00"))
            except ValueError:
                continue
            if started.tzinfo is None:
                started = started.replace(tzinfo=timezone.utc)
            if not (window.before <= started <= window.after):
                continue
            findings = d.get("findings") or []
            out.append({"ts": started, "runbook": d.get("runbook"), "status": d.get("status"),
                        "interactive": bool(d.get("interactive")), "path": str(path.with_suffix(".html")),
                        "worst": [f for f in findings if f.get("severity") in ("critical", "warning")][:3],
                        "remediation": _acted(d, findings, started), "parameters": d.get("parameters") or {}})
    return out


def _acted(sidecar: dict, findings: list[dict], started: datetime) -> list[dict]:
    """The cancel/terminate calls a run attempted, each with when it happened (`ts`): a Lab run's sidecar says when
    (its `remediation`, with `at`); a run of `opsbook run` made them during the run, dated by its start."""
    listed = sidecar.get("remediation")
    if not isinstance(listed, list):
        listed = [f for f in findings if str(f.get("check", "")).startswith("remediation.")
                  and f.get("severity") != "ok" and (f.get("value") is True or f.get("severity") == "warning")]
    out = []
    for f in listed:
        if not isinstance(f, dict):
            continue
        try:
            ts = datetime.fromisoformat(str(f["at"]).replace("Z", "+00:00")) if f.get("at") else started
        except ValueError:
            ts = started
        out.append({**f, "ts": ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc),
                    "done": f.get("value") is True})
    return out


def gather(config, target: str, window: Window, *, log_path: str | None = None, baseline_days: float = 7,
           prefix: str | None = None, prefix_origin: str = "given", reports_dir: Path | None = None,
           log_timezone: str | None = None) -> Evidence:
    """The Evidence of `target` for `window`: what the history store and the log hold, and what is missing."""
    from ...history import open_store  # noqa: PLC0415
    from ..watch.store import read_samples  # noqa: PLC0415

    ev = Evidence(target, window)
    store = open_store(config, create=False)
    if store is None:
        ev.missing.append("no history store yet: no activity samples or snapshots to read (run `opsbook watch "
                          f"--target {target}` during incidents, `opsbook snapshot` from cron)")
    else:
        try:
            ev.samples = read_samples(store.engine, target, window.before.timestamp(), window.after.timestamp())
            ev.snapshots = store.snapshots(target, window.before, window.after)
            ev.statements = store.statement_deltas(target, window.before, window.after)
            base_start = window.start - timedelta(days=baseline_days)
            ev.baseline_statements = store.statement_deltas(target, base_start, window.start)
            base = store.snapshots(target, base_start, window.start)
            if len(base) >= 2:
                ev.baseline_hours = (base["epoch"].iloc[-1] - base["epoch"].iloc[0]) / 3600
        finally:
            store.close()
        if not ev.ok_samples:
            ev.missing.append(f"no activity samples of {target} in the window: sessions, blocking trees and "
                              f"counters come from `opsbook watch --target {target}` (run it all the time, e.g. "
                              "as the systemd unit in docs/history.md)")
        if ev.snapshots is None or len(ev.snapshots) < 2:
            ev.missing.append("fewer than two snapshots around the window: no statement statistics for what "
                              "changed (`opsbook snapshot` from cron)")
    if log_path:
        ev.log = read_log(log_path, window, baseline_days=baseline_days, prefix=prefix, prefix_origin=prefix_origin,
                          log_timezone=log_timezone)
        if ev.log.error:
            ev.missing.append(f"the server log was not read: {ev.log.error}")
        elif ev.log.first_ts is None or ev.log.last_ts < window.start or ev.log.first_ts > window.end:
            ev.missing.append(f"the server log ({', '.join(ev.log.files[:3])}) has no lines in the window")
    else:
        ev.missing.append("no server log given (log_path): errors, timeouts, deadlocks and refused connections "
                          "come from it (Supabase: Logs Explorer > export)")
    for s in ev.ok_samples:  # who the waiting sessions were, for logs whose prefix has no %a
        detail = s.get("detail") or {}
        for pid, app in detail.get("waiters", []):
            if app and app != "(none)":
                ev.log.apps.setdefault(pid, app)
        for r in detail.get("roots", []):
            if r.get("application"):
                ev.log.apps.setdefault(r["pid"], r["application"])
    ev.sidecars = read_sidecars(Path(reports_dir or config.reports_dir), target, window)
    return ev
