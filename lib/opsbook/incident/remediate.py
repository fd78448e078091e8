"""Remediation: the exact pg_cancel_backend / pg_terminate_backend calls for what triage found, run only on confirm.

`plan(rb)` lists, from the findings, what should end: root blockers, sessions idle in a transaction, runaway
statements. `apply(rb, terminate_pids=[...], cancel_pids=[...], confirm=True)` runs those calls, and only those,
in a separate session that is not read-only, for exactly the pids given, and records each result as a finding of
`remediation.backends`. Without confirm it records what it would have done and changes nothing.
`act(rb, action, pid, backend_start=..., usename=...)` runs one call a person confirmed in JupyterLab (confirm.py's
buttons), only if the pid is still the backend they were shown, and records it once with the time it happened.
This module is the one place that signals a backend.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from ..report import record as runrecord
from ..database.session import conninfo_of, raw_connect, unit

COLUMNS = ["pid", "action", "sql", "reason", "check"]
APPLIED = ["pid", "action", "sql", "done", "outcome"]
# What each finding asks for: an idle session has nothing to cancel; a running statement is cancelled first.
ACTIONS = {"activity.idle_in_transaction": "terminate", "activity.long_running": "cancel"}


def statement(action: str, pid: int) -> str:
    return f"SELECT pg_{'terminate' if action == 'terminate' else 'cancel'}_backend({int(pid)});"


def _pid(finding) -> int | None:
    for obj in finding.objects or []:
        text = str(obj)
        if text.startswith("pid ") and text[4:].isdigit():
            return int(text[4:])
    return None


def plan(rb):
    """Proposed calls, most drastic first: one row per pid from the warning/critical findings that name one."""
    import pandas as pd  # noqa: PLC0415

    rows: dict[int, dict] = {}
    for f in rb.findings:
        if f.severity.rank < 2 or f.check not in (*ACTIONS, "locks.blocking"):
            continue
        pid = _pid(f)
        if not pid:  # pid 0: a prepared transaction, which the finding explains how to end
            continue
        action = ACTIONS.get(f.check) or ("terminate" if "pg_terminate_backend" in f.remediation.split(";")[0]
                                          else "cancel")
        row = rows.setdefault(pid, {"pid": pid, "action": action, "reason": f.title, "check": f.check})
        if action == "terminate":
            row["action"] = "terminate"
    out = pd.DataFrame([{**r, "sql": statement(r["action"], r["pid"])} for r in rows.values()], columns=COLUMNS)
    return out.sort_values(["action", "pid"], ascending=[False, True], ignore_index=True)


def apply(rb, terminate_pids: Iterable[int] = (), cancel_pids: Iterable[int] = (), *, confirm: bool = False):
    """Run pg_terminate_backend / pg_cancel_backend for exactly these pids when confirm is true; record results."""
    import pandas as pd  # noqa: PLC0415

    wanted = [("terminate", int(p)) for p in terminate_pids] + [("cancel", int(p)) for p in cancel_pids
                                                                 if int(p) not in set(map(int, terminate_pids))]
    rows = [{"pid": pid, "action": action, "sql": statement(action, pid), "done": False,
             "outcome": "not run: confirm is False, nothing was changed"} for action, pid in wanted]
    if confirm and wanted:
        _run(rb, rows)
    df = pd.DataFrame(rows, columns=APPLIED)
    rb.judge("remediation.backends", df)  # one finding per call, kept in the report and the sidecar
    runrecord.record("backends_terminated", int(sum(r["done"] and r["action"] == "terminate" for r in rows)))
    runrecord.record("backends_cancelled", int(sum(r["done"] and r["action"] == "cancel" for r in rows)))
    return df


def backends(rb, pids: Iterable[int]):
    """Who each pid is now, among the target database's client sessions: user, application, when its backend
    and its statement started, its state and statement (redacted). What a confirmation names, and what `act`
    checks the pid still is."""
    return rb.db.query("SELECT pid, usename, application_name, backend_start, query_start, state, query "
                       "FROM pg_catalog.pg_stat_activity WHERE pid = ANY(:pids) AND datname = current_database() "
                       "AND backend_type = 'client backend' ORDER BY pid", pids=[int(p) for p in pids])


def act(rb, action: str, pid: int, *, backend_start: Any, usename: str | None) -> dict:
    """One call a person confirmed: run it in a fresh session and a transaction of its own, only if `pid` is still
    the backend they were shown (the same backend_start and user, else refused: the pid was reused), and record
    it once, with the time it happened (UTC, in the outcome). Returns the row: pid, action, sql, done, outcome."""
    import pandas as pd  # noqa: PLC0415

    row = {"pid": int(pid), "action": action, "sql": statement(action, pid), "done": False, "outcome": ""}
    try:
        _run(rb, [row], expect={int(pid): (_instant(backend_start), usename)})
    except Exception as e:  # noqa: BLE001 - no session to run it in: said in the panel and the record
        row["outcome"] = "failed: " + " ".join(str(e).split())[:200]
    row["outcome"] += f" at {dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}"
    rb.judge("remediation.backends", pd.DataFrame([row], columns=APPLIED))
    done = [f for f in rb.findings if f.check == "remediation.backends" and f.value is True]
    runrecord.record("backends_terminated", sum(f.title.startswith("terminate ") for f in done))
    runrecord.record("backends_cancelled", sum(f.title.startswith("cancel ") for f in done))
    return row


def _instant(value: Any) -> dt.datetime | None:
    """A timestamp as the server compares it (pandas' Timestamp to datetime)."""
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value


def _run(rb, rows: list[dict], expect: dict[int, tuple] | None = None) -> None:
    """One session for the calls, each pid checked and signalled in one explicit transaction of its own: read-only
    too (signalling a backend writes nothing), short timeouts, the search path pinned, and nothing but the checks
    and the calls; only backends of the target's own database (and, with `expect`, only the very backend that
    was planned: pid -> (backend_start, usename))."""
    own = set()
    if rb.db is not None:
        own.add(int(rb.db.scalar("SELECT pg_backend_pid()")))
    conn = raw_connect(conninfo_of(rb.target), read_only=True, statement_timeout_ms=10_000, lock_timeout_ms=1_000)
    try:
        own.add(conn.info.backend_pid)
        for row in rows:
            pid = row["pid"]
            if pid in own:
                row["outcome"] = "refused: that is opsbook's own session"
                continue
            try:
                row["outcome"] = _signal(conn, row, None if expect is None else expect[pid])
            except Exception as e:  # noqa: BLE001 - e.g. no privilege to signal that role's backend
                row["outcome"] = "failed: " + " ".join(str(e).split())[:200]
            row["done"] = row["outcome"].startswith("signal sent")
    finally:
        conn.close()


def _signal(conn, row: dict, expect: tuple | None = None) -> str:
    """Check the pid (and, given, that it is the backend `expect` names) and signal it, in one transaction: what
    happened, in words."""
    pid = row["pid"]
    with unit(conn, read_only=True, statement_timeout_ms=10_000, lock_timeout_ms=1_000):
        kind = conn.execute("SELECT backend_type, datname = current_database(), backend_start, usename "
                            "FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        if kind is None:
            return "no such backend now (it ended, or the pid is wrong)"
        if not kind[1]:
            return f"refused: pid {pid} is connected to another database than this target's"
        if kind[0] != "client backend":
            return f"refused: pid {pid} is a {kind[0]}, not a client session"
        if expect is not None and (kind[2], kind[3]) != expect:
            return (f"refused: pid {pid} is now another backend (user {kind[3]}, connected {_utc(kind[2])}), not "
                    f"the one shown (user {expect[1]}, connected {_utc(expect[0])}); nothing was done")
        call = row["sql"]
        if row["action"] == "terminate" and conn.info.server_version >= 140000:
            call = f"SELECT pg_terminate_backend({pid}, 5000);"  # waits up to 5 s until it has exited
        ok = conn.execute(call).fetchone()[0]
    if not ok:
        return "the server refused (returned false)"
    return "signal sent: " + ("terminated" if row["action"] == "terminate" else "statement cancelled")


def _utc(when: dt.datetime | None) -> str:
    return "at an unknown time" if when is None else f"{when.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S.%f UTC}"
