"""One light activity sample: one read-only query, blocking trees resolved to their roots in Python."""
from __future__ import annotations

import time
from typing import Any

from ...database import sql as sqlfiles
from ...logs.redaction import redact_text

MAX_APPS = 10  # applications listed per sample (the busiest); the rest are counted in connections only
MAX_QUERY = 300  # characters of a root's statement kept
MAX_ROOTS = 5  # blocking roots kept per sample (the biggest trees)
MAX_WAITERS = 50  # waiting sessions listed (pid, application) per sample


def take_sample(db) -> dict[str, Any]:
    """A sample row for the store from the read-only Session `db` (without `target`)."""
    from sqlalchemy import text  # noqa: PLC0415

    sql_text = sqlfiles.load("watch/sample", db.server_version_num)
    t0 = time.perf_counter()
    with db.unit():
        r = db.conn.execute(text(sql_text), {"max_apps": MAX_APPS, "max_query": MAX_QUERY}).mappings().one()
    server_ms = (time.perf_counter() - t0) * 1000
    by_state = r["by_state"] or {}
    roots = blocking_roots(r["waits"] or [], r["blockers"] or [])
    longest = r["longest"]
    return {
        "ts": float(r["ts"]), "status": "ok", "server_ms": round(server_ms, 3),
        "connections": int(r["connections"]), "max_connections": int(r["max_connections"]),
        "active": int(by_state.get("active", 0)), "idle_in_transaction": int(by_state.get("idle in transaction", 0)
                                                                               + by_state.get(
                                                                                   "idle in transaction (aborted)", 0)),
        "waiting": len(r["waits"] or []), "blocked_max_tree": max((x["blocked"] for x in roots), default=0),
        "longest_xact_s": round(float(longest[3]), 3) if longest and longest[3] is not None else None,
        "xact_commit": _f(r["xact_commit"]), "xact_rollback": _f(r["xact_rollback"]), "deadlocks": _f(r["deadlocks"]),
        "temp_bytes": _f(r["temp_bytes"]), "wal_bytes": _f(r["wal_bytes"]),
        "detail": {"by_state": by_state, "by_wait": r["by_wait"] or {}, "by_app": r["by_app"] or {},
                   "roots": roots[:MAX_ROOTS],
                   "waiters": [[w[0], w[5] if len(w) > 5 else None] for w in (r["waits"] or [])][:MAX_WAITERS],
                   "longest": {"pid": longest[0], "application": longest[1], "state": longest[2],
                               "xact_age_s": round(float(longest[3]), 3) if longest[3] is not None else None}
                   if longest else None},
    }


def _f(v) -> float | None:
    return None if v is None else float(v)


def blocking_roots(waits: list, blockers: list) -> list[dict]:
    """Each blocking tree's root (a blocker not itself waiting) with how many sessions wait behind it, directly
    or through others, the lock they wait for and its relation (the one the waiters want, else a table the root holds a
    lock on); biggest tree first.

    waits: [pid, [blocking pids], locktype, mode, relation]; blockers: [pid, app, user, state, xact age s,
    statement, relation it holds a table lock on]."""
    blocked_by = {w[0]: list(w[1] or []) for w in waits}
    wanted = {w[0]: (w[2], w[3], w[4]) for w in waits}
    info = {b[0]: b for b in blockers}
    children: dict[int, set[int]] = {}
    for pid, by in blocked_by.items():
        for b in by:
            children.setdefault(b, set()).add(pid)
    out = []
    for pid in sorted(children):
        if pid in blocked_by:
            continue  # waits itself: not a root
        seen: set[int] = set()
        stack = [pid]
        while stack:
            for c in children.get(stack.pop(), ()):
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        direct = sorted(children[pid])
        locktype, mode, rel = wanted.get(direct[0], (None, None, "")) if direct else (None, None, "")
        b = info.get(pid) or [pid, None, None, None, None, None, ""]
        out.append({"pid": pid, "application": b[1], "user": b[2], "state": b[3],
                    "xact_age_s": round(float(b[4]), 3) if b[4] is not None else None,
                    "statement": redact_text(b[5]) if b[5] else None, "relation": rel or b[6] or None,
                    "lock_type": locktype, "lock_mode": mode, "blocked": len(seen), "direct": direct[:20]})
    out.sort(key=lambda x: (-x["blocked"], x["pid"]))
    return out
