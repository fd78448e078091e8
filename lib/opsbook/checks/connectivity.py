"""connectivity.unreachable: can we reach the database at all, and if not, why."""
from __future__ import annotations

import time

from ..db import NEXT_STEPS, connect, ensure_demo_server
from ..errors import ConnectError
from ..findings import TIMED_OUT, Finding, Severity
from .registry import Check, Threshold, register


def attempt(target, *, connect_timeout_s: int = 5, statement_timeout_ms: int = 30_000):
    """Try to connect: (session or None, ConnectError or None, one-row DataFrame describing the attempt)."""
    import pandas as pd  # noqa: PLC0415
    import psycopg  # noqa: F401, PLC0415 - imported before the clock starts: a cold kernel's import time
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401, PLC0415 - is not the network's latency

    if target.embedded:
        ensure_demo_server()  # starting the embedded server (or building the demo) is not connecting either
    t0 = time.perf_counter()
    session, error = None, None
    try:
        session = connect(target, connect_timeout_s=connect_timeout_s, statement_timeout_ms=statement_timeout_ms,
                          start_embedded=False)
    except ConnectError as e:
        error = e
    row = {"target": target.name, "where": target.display(), "connected": session is not None,
           "connect_ms": (time.perf_counter() - t0) * 1000,
           "kind": error.kind if error else None, "message": str(error) if error else None,
           "server_version": session.server_version if session else None}
    return session, error, pd.DataFrame([row])


def lost_probe(target, how: str, check_id: str, *, connect_timeout_s: int = 3):
    """After the session died during `check_id`: can a fresh connection be made? One-row DataFrame like
    attempt()'s, kind `lost` (the database went away) or `lost_answering` (it answers again)."""
    import pandas as pd  # noqa: PLC0415

    t0 = time.perf_counter()
    try:
        connect(target, connect_timeout_s=connect_timeout_s, start_embedded=False).close()
        kind, again = "lost_answering", "a new connection succeeded right after"
    except ConnectError as e:
        kind, again = "lost", f"a new connection failed too ({e.kind})"
    message = f"the connection was lost during {check_id}: {how}; {again}"
    return pd.DataFrame([{"target": target.name, "where": target.display(), "connected": False,
                          "connect_ms": (time.perf_counter() - t0) * 1000, "kind": kind, "message": message,
                          "server_version": None}])


def judge_unreachable(df, *, slow_connect_ms: float = 2000) -> list[Finding]:
    row = df.iloc[0]
    if row["kind"] == "lost":
        return [Finding("connectivity.unreachable", Severity.CRITICAL,
                        f"the database went away during the run: target {row['target']} no longer answers",
                        detail=row["message"], objects=[row["where"]], value="lost",
                        remediation="Is the server up (status page, `pg_isready`)? Was it restarted or did it crash "
                                    "(its log)? The checks after the loss were not run: run the runbook again once "
                                    "it answers.")]
    if row["kind"] == "lost_answering":
        return [Finding("connectivity.unreachable", Severity.WARNING,
                        f"opsbook's session to {row['target']} was cut during the run; the server answers again",
                        detail=row["message"], objects=[row["where"]], value="lost_answering",
                        remediation="A restart, a failover, a pooler or an administrator ended the session "
                                    "(pg_terminate_backend): see the server's log; run the runbook again for the "
                                    "checks that were cut off.")]
    if row["kind"] == "own_timeout":
        return [Finding("connectivity.unreachable", Severity.WARNING,
                        f"target {row['target']} answered, but opsbook's own statement timeout cancelled its first "
                        "query: nothing was judged", detail=row["message"], objects=[row["where"]],
                        value="own_timeout", remediation=NEXT_STEPS["own_timeout"],
                        skipped=f"{TIMED_OUT}: opsbook's first query, so no check ran")]
    if not row["connected"]:
        kind = row["kind"]
        what = {"dns": "host name does not resolve", "refused": "nothing is listening",
                "timeout": "connection timed out", "auth": "authentication failed",
                "no_password": "no password supplied", "no_database": "database does not exist",
                "ssl": "SSL negotiation failed"}.get(kind, "connection failed")
        return [Finding("connectivity.unreachable", Severity.CRITICAL,
                        f"cannot reach target {row['target']}: {what}", detail=row["message"],
                        objects=[row["where"]], value=kind, remediation=NEXT_STEPS.get(kind, NEXT_STEPS["other"]))]
    ms = float(row["connect_ms"])
    if ms > slow_connect_ms:
        return [Finding("connectivity.unreachable", Severity.WARNING,
                        f"connecting took {ms:,.0f} ms", value=round(ms), threshold=slow_connect_ms,
                        detail="slow connection set-up: network latency, DNS, or a server short of backends",
                        remediation="compare with `psql` timing from the app's network; check connection counts")]
    return [Finding("connectivity.unreachable", Severity.OK, f"connected in {ms:,.0f} ms to PostgreSQL "
                    f"{row['server_version']}", value=round(ms), threshold=slow_connect_ms)]


UNREACHABLE = register(Check(
    id="connectivity.unreachable",
    description="Connects to the target and tells apart DNS failure, refused, timeout, authentication failure and "
                "a missing database, each with its next step.",
    judge=judge_unreachable,
    thresholds=(Threshold("slow_connect_ms", 2000, "ms", "opsbook default: 2 s is far above a healthy "
                          "same-region connect (tens of ms)"),),
    runbooks=("incident-triage",),
))
