"""Root-cause candidates from the evidence, ranked: blocking roots (samples and log lock waits), deadlocks,
refused connections, spills; each names its application, pid and relation and quotes the statement it blames."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from ...core.display import human_bytes, human_seconds
from .evidence import Evidence
from .timeline import incident_events, utc


@dataclass
class Candidate:
    kind: str  # blocking | deadlock | connections | temp_files
    score: float
    title: str
    detail: str
    objects: list[str] = field(default_factory=list)
    statement: str | None = None
    pid: int | None = None
    application: str | None = None
    relation: str | None = None
    remediation: str = ""
    impact: int = 0  # statements failed because of it


def _lock_roots_from_log(ev: Evidence) -> dict[int, dict]:
    """pid -> {waiters, waits, first, last, relation, lock_type, max_wait_ms} for the roots of the log's lock
    waits (a blocker that is not itself waiting)."""
    edges: dict[int, set[int]] = {}
    waiting: set[int] = set()
    info: dict[int, dict] = {}
    for e in incident_events(ev):
        if e.kind in ("lock_wait", "lock_acquired") and ev.window.inside(e.ts) and e.pid is not None:
            waiting.add(e.pid)
            for b in e.blocking_pids:
                edges.setdefault(b, set()).add(e.pid)
            for b in e.blocking_pids or ():
                start = e.ts - timedelta(milliseconds=e.duration_ms or 0)  # when the wait began
                d = info.setdefault(b, {"waits": 0, "first": start, "last": e.ts, "relation": None,
                                        "lock_type": None, "max_wait_ms": 0.0})
                d["waits"] += 1
                d["first"] = min(d["first"], start)
                d["last"] = max(d["last"], e.ts)
                d["relation"] = d["relation"] or e.relation
                d["lock_type"] = d["lock_type"] or e.lock_type
                d["max_wait_ms"] = max(d["max_wait_ms"], e.duration_ms or 0)
    roots = {}
    for pid in edges:
        if pid in waiting:
            continue
        seen, stack = set(), [pid]
        while stack:
            for c in edges.get(stack.pop(), ()):
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        roots[pid] = {**info.get(pid, {}), "waiters": seen}
    return roots


def _lock_roots_from_samples(ev: Evidence) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for s in ev.ok_samples:
        for r in (s.get("detail") or {}).get("roots", []):
            d = out.setdefault(r["pid"], {"blocked_max": 0, "first": s["ts"], "last": s["ts"], "samples": 0})
            d["samples"] += 1
            d["blocked_max"] = max(d["blocked_max"], r.get("blocked") or 0)
            d["last"] = s["ts"]
            for k in ("application", "user", "state", "relation", "lock_type", "lock_mode"):
                if r.get(k):
                    d[k] = r[k]
            if r.get("statement"):
                d["statement"] = r["statement"]
            d["xact_age_s"] = max(d.get("xact_age_s") or 0, r.get("xact_age_s") or 0)
            d.setdefault("states", []).append(r.get("state"))
    return out


def _failed_behind(ev: Evidence, pids: set[int]) -> int:
    return sum(1 for e in incident_events(ev) if e.kind == "statement_timeout" and e.pid in pids
               and ev.window.inside(e.ts))


def blocking_candidates(ev: Evidence) -> list[Candidate]:
    logs = _lock_roots_from_log(ev)
    samples = _lock_roots_from_samples(ev)
    out = []
    for pid in sorted(set(logs) | set(samples)):
        lg, sm = logs.get(pid, {}), samples.get(pid, {})
        app = sm.get("application") or ev.log.apps.get(pid)
        relation = sm.get("relation") or lg.get("relation")
        lock_type = sm.get("lock_type") or lg.get("lock_type")
        held_s = max(sm.get("xact_age_s") or 0,
                     (lg["last"] - lg["first"]).total_seconds() if lg.get("first") else 0)
        waiters = lg.get("waiters", set())
        blocked = max(sm.get("blocked_max", 0), len(waiters))
        cancelled = _failed_behind(ev, waiters)
        states = [s for s in sm.get("states", []) if s]
        state = max(set(states), key=states.count) if states else None
        lock = "a row lock" if lock_type in ("transactionid", "tuple", "ShareLock", "ExclusiveLock") or \
            (lock_type or "").lower() == "transactionid" else (f"a {lock_type} lock" if lock_type else "locks")
        who = f"application {app} (pid {pid})" if app else f"pid {pid}"
        title = (f"{who} held {lock}" + (f" on {relation}" if relation else "") + f" for {human_seconds(held_s)}"
                 + (f" while {state}" if state else "") + f"; {blocked} session(s) waited"
                 + (f", {cancelled} statement(s) were cancelled by statement_timeout" if cancelled else ""))
        stmt = sm.get("statement")
        sources = [x for x, present in (("activity samples", bool(sm)), ("server log lock waits", bool(lg))) if present]
        detail = (f"Evidence: {' and '.join(sources)}"
                  + (f"; {sm['samples']} sample(s) saw it at the root of the blocking tree" if sm else "")
                  + (f"; the log has {lg['waits']} lock wait(s) naming it as the holder" if lg else "") + ". "
                  + (f"Its statement: {stmt}" if stmt else
                     "Its statement is not in the evidence (samples name it; the log names only waiters)."))
        objs = [o for o in (app, f"pid {pid}", relation) if o]
        out.append(Candidate("blocking", blocked * 10 + len(waiters) * 2 + cancelled * 3 + min(held_s, 600) / 10
                             + (5 if sm and lg else 0), title, detail, objs, stmt, pid, app, relation,
                             remediation="End such transactions sooner: commit before slow work, set "
                                         "idle_in_transaction_session_timeout (e.g. ALTER ROLE ... SET "
                                         "idle_in_transaction_session_timeout = '30s'), and give the waiting "
                                         "statements a lock_timeout so they fail fast instead of piling up.",
                             impact=cancelled))
    return out


def deadlock_candidate(ev: Evidence) -> list[Candidate]:
    dls = [e for e in incident_events(ev) if e.kind == "deadlock" and ev.window.inside(e.ts)]
    if not dls:
        return []
    first = dls[0]
    stmts = list(first.statements) or [first.statement or ""]
    app = first.application or ev.log.apps.get(first.pid or -1)
    rel = first.relation or next((r for r in (e.context or "" for e in dls) if 'relation "' in r), None)
    relname = rel.split('relation "', 1)[1].split('"', 1)[0] if rel and 'relation "' in rel else None
    return [Candidate("deadlock", 8 * len(dls),
                      f"{len(dls)} deadlock(s)" + (f" in application {app}" if app else "")
                      + (f" on {relname}" if relname else "") + f", first at {utc(first.ts):%H:%M:%S} UTC",
                      "PostgreSQL cancelled one transaction of each cycle. The statements of the first: "
                      + " | ".join(s for s in stmts if s),
                      [o for o in (app, f"pid {first.pid}", relname) if o], stmts[0] if stmts else None, first.pid,
                      app, relname, remediation="Take row locks in one order in every code path (e.g. ORDER BY id "
                                                "... FOR UPDATE), or keep such transactions to one statement.",
                      impact=len(dls))]


def connection_candidate(ev: Evidence) -> list[Candidate]:
    refused = [e for e in incident_events(ev) if e.kind == "too_many_connections" and ev.window.inside(e.ts)]
    inside = [s for s in ev.ok_samples if ev.window.inside(_dt(s["ts"]))]
    peak = max(inside, key=lambda s: s.get("connections") or 0, default=None)
    near = peak and peak.get("max_connections") and peak["connections"] >= 0.9 * peak["max_connections"]
    if not refused and not near:
        return []
    apps = (peak or {}).get("detail", {}).get("by_app", {}) if peak else {}
    top = max(apps.items(), key=lambda kv: kv[1]) if apps else None
    title = (f"{len(refused)} connection(s) refused (too many clients)" if refused else
             f"connections at {peak['connections']} of {peak['max_connections']}")
    if peak:
        title += f"; peak {peak['connections']} of max_connections {peak['max_connections']}"
    if top:
        title += f", most from application {top[0]} ({top[1]})"
    return [Candidate("connections", 2 * len(refused) + (5 if near else 0), title,
                      "Clients that could not connect failed outright. " +
                      ("Samples show who held the slots." if peak else "No activity samples: who held the slots "
                                                                        "is unknown."),
                      [o for o in ((top[0] if top else None), "max_connections") if o],
                      remediation="Put a pooler in front (Supabase: Supavisor, transaction mode) and cap each "
                                  "application's pool; find why sessions were held (the blocking candidate above).",
                      impact=len(refused))]


def temp_candidate(ev: Evidence) -> list[Candidate]:
    temps = [e for e in incident_events(ev) if e.kind == "temp_file" and ev.window.inside(e.ts)]
    if not temps:
        return []
    total = sum(e.size_bytes or 0 for e in temps)
    biggest = max(temps, key=lambda e: e.size_bytes or 0)
    app = biggest.application or ev.log.apps.get(biggest.pid or -1)
    return [Candidate("temp_files", 1 + total / 1e9, f"{len(temps)} temporary file(s), {human_bytes(total)}, "
                      f"spilled past work_mem" + (f", the biggest by application {app} (pid {biggest.pid})"
                                                  if app else f", the biggest by pid {biggest.pid}"),
                      f"Its statement: {biggest.statement}" if biggest.statement else "",
                      [o for o in (app, f"pid {biggest.pid}") if o], biggest.statement, biggest.pid, app,
                      remediation="An index that avoids the sort, or more work_mem for that role.")]


def _dt(epoch: float):
    from datetime import datetime, timezone  # noqa: PLC0415

    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def candidates(ev: Evidence) -> list[Candidate]:
    """Every candidate, best supported first."""
    out = [*blocking_candidates(ev), *deadlock_candidate(ev), *connection_candidate(ev), *temp_candidate(ev)]
    return sorted(out, key=lambda c: -c.score)
