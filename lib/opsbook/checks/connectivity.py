"""connectivity.unreachable: can we reach the database at all, and if not, why; connectivity.role: as whom."""
from __future__ import annotations

import time

from ..database.session import NEXT_STEPS, connect
from ..database.demo.build import ensure_demo_server
from ..core.errors import ConnectError
from ..core.findings import TIMED_OUT, Finding, Severity
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
                "hba": "the server's pg_hba.conf has no rule for this connection",
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


ALL_RUNBOOKS = ("incident-triage", "capacity-planning", "cost-analysis", "backup-verification", "table-recovery",
                "post-mortem", "monthly-health", "security-audit")
ROLE_RECIPE = ("opsbook only reads: a monitoring role with pg_monitor (statistics, every session's query) and, for "
               "the checks that read table contents (freshness, exact counts, table recovery), pg_read_all_data "
               "sees everything it needs. The README's 'A least-privilege monitoring role' gives the statements for "
               "plain PostgreSQL and for Supabase.")


def role(ctx):
    return ctx.db.fetch("connectivity/role")


def judge_role(df) -> list[Finding]:
    if not len(df):
        return [Finding("connectivity.role", Severity.INFO, "could not tell which role opsbook is connected as",
                        skipped="no row for current_user in pg_roles")]
    r = df.iloc[0]
    held = list(r["monitoring_roles"] or [])
    if bool(r["superuser"]):  # ok: it can see everything; the header and this finding say it is more than needed
        return [Finding("connectivity.role", Severity.OK,
                        f"connected as {r['role_name']}, a superuser: more privilege than a diagnosis needs",
                        detail="Every session opsbook opens is read-only per transaction with its search path "
                               "pinned to pg_catalog, so nothing the database's users wrote runs with this role's "
                               "privileges; a monitoring role limits what a mistake could reach all the same.",
                        objects=[str(r["role_name"])], value="superuser", remediation=ROLE_RECIPE)]
    extra = ", BYPASSRLS" if bool(r["bypassrls"]) else ""
    member = f"member of {', '.join(held)}" if held else "member of no monitoring role"
    return [Finding("connectivity.role", Severity.OK, f"connected as {r['role_name']} (not superuser{extra}; "
                    f"{member})", objects=[str(r["role_name"])], value=", ".join(held) or "none",
                    detail="" if "pg_monitor" in held else "Without pg_monitor some checks see only this role's own "
                    "sessions and statements; each says so where it matters. " + ROLE_RECIPE)]


ROLE = register(Check(
    id="connectivity.role",
    description="Which role opsbook is connected as: a superuser is said (with the recipe for a least-privilege "
                "monitoring role), a monitoring role's memberships are listed.",
    data=role, judge=judge_role, queries=("connectivity/role",), runbooks=ALL_RUNBOOKS,
))
