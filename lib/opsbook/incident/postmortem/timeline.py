"""The timeline: per-minute series over the padded window, and the merged table of events in time order."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from ...core.display import human_bytes
from ...logs import OWN_APPLICATION
from .evidence import Evidence

COUNTER_RATES = {"xact_commit": "tps", "xact_rollback": "rollbacks_per_s", "deadlocks": "deadlocks",
                 "temp_bytes": "temp_bytes"}


def own(ev: Evidence, e) -> bool:
    """An event of one of opsbook's own sessions (its application_name, from the line or, for a prefix without
    %a, from its pid's connection line or the activity samples): not the incident's."""
    return (e.application or ev.log.apps.get(e.pid if e.pid is not None else -1)) == OWN_APPLICATION


def incident_events(ev: Evidence) -> list:
    """The log events of the padded window that are the incident's: opsbook's own sessions' left out."""
    return [e for e in ev.log.events if not own(ev, e)]


def utc(ts: datetime) -> datetime:
    """The same instant in UTC (a log in local time gives times with its own offset; naive ones are UTC)."""
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def sample_series(ev: Evidence) -> pd.DataFrame:
    """One row per ok sample: connections by state, waiting sessions, and counter rates since the sample before
    (a counter that went down, a reset, counts from zero)."""
    rows = []
    prev = None
    for s in ev.ok_samples:
        by = (s.get("detail") or {}).get("by_state", {})
        r = {"ts": datetime.fromtimestamp(s["ts"], tz=timezone.utc), "connections": s["connections"],
             "active": by.get("active", 0), "idle": by.get("idle", 0),
             "idle_in_transaction": s.get("idle_in_transaction") or 0, "waiting": s.get("waiting") or 0,
             "blocked_max_tree": s.get("blocked_max_tree") or 0}
        if prev is not None:
            dt = max(s["ts"] - prev["ts"], 1e-6)
            for col, name in COUNTER_RATES.items():
                a, b = prev.get(col), s.get(col)
                if a is None or b is None:
                    continue
                d = b - a if b >= a else b
                r[name] = d / dt if name in ("tps", "rollbacks_per_s") else d
        rows.append(r)
        prev = s
    return pd.DataFrame(rows)


def log_series(ev: Evidence) -> pd.DataFrame:
    """Per minute of the padded window, in UTC: errors and the notable kinds of the log, opsbook's own
    sessions' taken out."""
    mine: dict[datetime, dict[str, int]] = {}
    for e in ev.log.events:
        if own(ev, e):
            b = mine.setdefault(e.ts.replace(second=0, microsecond=0), {})
            b[e.kind] = b.get(e.kind, 0) + 1
            if e.severity in ("ERROR", "FATAL", "PANIC"):
                b["errors"] = b.get("errors", 0) + 1

    def n(m, b, key):
        return max(b.get(key, 0) - mine.get(m, {}).get(key, 0), 0)

    rows = [{"ts": utc(m), "errors": n(m, b, "errors"), "lock_waits": n(m, b, "lock_wait"),
             "timeouts": n(m, b, "statement_timeout"), "deadlocks_log": n(m, b, "deadlock"),
             "refused": n(m, b, "too_many_connections"), "temp_files": n(m, b, "temp_file")}
            for m, b in sorted(ev.log.per_minute.items())]
    return pd.DataFrame(rows)


def gaps(ev: Evidence) -> list[tuple[datetime, datetime | None, str]]:
    """(from, to, error) for each time the sampler could not reach the target."""
    out, open_ = [], None
    for s in ev.samples:
        ts = datetime.fromtimestamp(s["ts"], tz=timezone.utc)
        if s["status"] == "unreachable" and open_ is None:
            open_ = (ts, (s.get("detail") or {}).get("error", ""))
        elif s["status"] == "ok" and open_ is not None:
            out.append((open_[0], ts, open_[1]))
            open_ = None
    if open_ is not None:
        out.append((open_[0], None, open_[1]))
    return out


def events_table(ev: Evidence, max_rows: int = 400) -> pd.DataFrame:
    """Everything in time order, in UTC: log events (opsbook's own sessions' left out, and a row says how many),
    sample highlights (a new blocking root, the peak of waiting sessions), gaps, snapshots and opsbook's own runs
    (with the remediation they did)."""
    rows = []
    kept = incident_events(ev)
    mine = [e for e in ev.log.events if own(ev, e)]
    if mine:
        rows.append({"ts": utc(mine[0].ts), "source": "log", "kind": "left_out", "pid": None,
                     "application": OWN_APPLICATION,
                     "what": f"{len(mine)} event(s) of opsbook's own sessions left out (not the incident's)"})
    for e in kept:
        what = e.message
        if e.kind == "deadlock" and e.statements:
            what += ": " + " | ".join(e.statements)
        elif e.statement and e.kind in ("statement_timeout", "error", "lock_wait", "temp_file", "slow_statement"):
            what += f" -- {' '.join(e.statement.split())[:160]}"
        rows.append({"ts": utc(e.ts), "source": "log", "kind": e.kind, "pid": e.pid,
                     "application": e.application or ev.log.apps.get(e.pid or -1), "what": what[:400]})
    seen_roots: set[int] = set()
    peak = max(ev.ok_samples, key=lambda s: s.get("waiting") or 0, default=None)
    for s in ev.ok_samples:
        ts = datetime.fromtimestamp(s["ts"], tz=timezone.utc)
        for r in (s.get("detail") or {}).get("roots", []):
            if r["pid"] not in seen_roots:
                seen_roots.add(r["pid"])
                rows.append({"ts": ts, "source": "sample", "kind": "blocking_root", "pid": r["pid"],
                             "application": r.get("application"),
                             "what": f"blocks {r.get('blocked')} session(s) ({r.get('state')}, "
                                     f"{r.get('relation') or r.get('lock_type') or 'a lock'}): "
                                     f"{(r.get('statement') or '')[:200]}"})
        if s is peak and (s.get("waiting") or 0) > 0:
            rows.append({"ts": ts, "source": "sample", "kind": "peak_waiting", "pid": None, "application": None,
                         "what": f"{s['waiting']} session(s) waiting on locks, {s['connections']} connections"})
    for start, end, err in gaps(ev):
        rows.append({"ts": start, "source": "sample", "kind": "gap", "pid": None, "application": None,
                     "what": f"target unreachable until {end:%H:%M:%S}: {err}" if end else
                     f"target unreachable from here on: {err}"})
    if ev.snapshots is not None and len(ev.snapshots):
        for s in ev.snapshots.itertuples():
            rows.append({"ts": utc(s.ts.to_pydatetime()), "source": "snapshot", "kind": "snapshot", "pid": None,
                         "application": None, "what": f"snapshot {s.id} ({s.parts})"})
    for sc in ev.sidecars:
        what = f"{sc['runbook']} run ({sc['status']}{', interactive' if sc['interactive'] else ''})"
        if sc["worst"]:
            what += ": " + "; ".join(f["title"] for f in sc["worst"])
        rows.append({"ts": utc(sc["ts"]), "source": "opsbook", "kind": "run", "pid": None, "application": None,
                     "what": what[:400]})
        for f in sc["remediation"]:  # at the moment it happened, not the run's start
            rows.append({"ts": utc(f["ts"]), "source": "opsbook", "kind": "remediation", "pid": None,
                         "application": None, "what": f"{sc['runbook']}: {f.get('title')}"[:400]})
    df = pd.DataFrame(rows, columns=["ts", "source", "kind", "pid", "application", "what"])
    if df.empty:
        return df
    df = df.sort_values("ts", kind="stable").reset_index(drop=True)
    df["in_window"] = df["ts"].map(lambda t: ev.window.inside(t))
    if len(df) > max_rows:  # keep what is inside the window first
        df = pd.concat([df[df["in_window"]], df[~df["in_window"]]]).head(max_rows).sort_values("ts")
    return df.reset_index(drop=True)


def temp_text(n: float) -> str:
    return human_bytes(n)
