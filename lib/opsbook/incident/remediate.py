"""Remediation: the exact pg_cancel_backend / pg_terminate_backend calls for what triage found, run only on confirm.

`plan(rb)` lists, from the findings, what should end: root blockers, sessions idle in a transaction, runaway
statements. `apply(rb, terminate_pids=[...], cancel_pids=[...], confirm=True)` runs those calls, and only those,
in a separate session that is not read-only, for exactly the pids given, and records each result as a finding of
`remediation.backends`. Without confirm it records what it would have done and changes nothing.
"""
from __future__ import annotations

from typing import Iterable

from ..report import record as runrecord
from ..database.session import conninfo_of, raw_connect, unit

COLUMNS = ["pid", "action", "sql", "reason", "check"]
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
    df = pd.DataFrame(rows, columns=["pid", "action", "sql", "done", "outcome"])
    rb.judge("remediation.backends", df)  # one finding per call, kept in the report and the sidecar
    runrecord.record("backends_terminated", int(sum(r["done"] and r["action"] == "terminate" for r in rows)))
    runrecord.record("backends_cancelled", int(sum(r["done"] and r["action"] == "cancel" for r in rows)))
    return df


def _run(rb, rows: list[dict]) -> None:
    """One session for the calls, each pid checked and signalled in one explicit transaction of its own: read-only
    too (signalling a backend writes nothing), short timeouts, the search path pinned, and nothing but the checks
    and the calls; only backends of the target's own database."""
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
                row["outcome"] = _signal(conn, row)
            except Exception as e:  # noqa: BLE001 - e.g. no privilege to signal that role's backend
                row["outcome"] = "failed: " + " ".join(str(e).split())[:200]
            row["done"] = row["outcome"].startswith("signal sent")
    finally:
        conn.close()


def _signal(conn, row: dict) -> str:
    """Check the pid and signal it, in one transaction: what happened, in words."""
    pid = row["pid"]
    with unit(conn, read_only=True, statement_timeout_ms=10_000, lock_timeout_ms=1_000):
        kind = conn.execute("SELECT backend_type, datname = current_database() FROM pg_stat_activity "
                            "WHERE pid = %s", (pid,)).fetchone()
        if kind is None:
            return "no such backend now (it ended, or the pid is wrong)"
        if not kind[1]:
            return f"refused: pid {pid} is connected to another database than this target's"
        if kind[0] != "client backend":
            return f"refused: pid {pid} is a {kind[0]}, not a client session"
        call = row["sql"]
        if row["action"] == "terminate" and conn.info.server_version >= 140000:
            call = f"SELECT pg_terminate_backend({pid}, 5000);"  # waits up to 5 s until it has exited
        ok = conn.execute(call).fetchone()[0]
    if not ok:
        return "the server refused (returned false)"
    return "signal sent: " + ("terminated" if row["action"] == "terminate" else "statement cancelled")
