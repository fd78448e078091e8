"""connectivity.unreachable: can we reach the database at all, and if not, why."""
from __future__ import annotations

import time

from ..db import NEXT_STEPS, connect
from ..errors import ConnectError
from ..findings import Finding, Severity
from .registry import Check, Threshold, register


def attempt(target, *, connect_timeout_s: int = 5, statement_timeout_ms: int = 30_000):
    """Try to connect: (session or None, ConnectError or None, one-row DataFrame describing the attempt)."""
    import pandas as pd  # noqa: PLC0415

    t0 = time.perf_counter()
    session, error = None, None
    try:
        session = connect(target, connect_timeout_s=connect_timeout_s, statement_timeout_ms=statement_timeout_ms)
    except ConnectError as e:
        error = e
    row = {"target": target.name, "where": target.display(), "connected": session is not None,
           "connect_ms": (time.perf_counter() - t0) * 1000,
           "kind": error.kind if error else None, "message": str(error) if error else None,
           "server_version": session.server_version if session else None}
    return session, error, pd.DataFrame([row])


def judge_unreachable(df, *, slow_connect_ms: float = 2000) -> list[Finding]:
    row = df.iloc[0]
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
