"""Activity: what the server is doing now: long-running statements."""
from __future__ import annotations

from ..findings import Finding, Severity
from .registry import Check, CheckContext, Threshold, register


def long_running(ctx: CheckContext, min_seconds: float = 0):
    """Active client statements running longer than `min_seconds`, oldest first."""
    return ctx.db.fetch("activity/long_running", min_seconds=min_seconds)


def _long_running_data(ctx: CheckContext):
    return long_running(ctx, min_seconds=0)


def judge_long_running(df, *, warning: float = 300, critical: float = 1800) -> list[Finding]:
    out = []
    for row in df.itertuples():
        if row.running_s < warning:
            continue
        sev = Severity.CRITICAL if row.running_s >= critical else Severity.WARNING
        out.append(Finding(
            "activity.long_running", sev, f"pid {row.pid} active for {row.running_s / 60:,.1f} min",
            detail=f"role {row.role}, application {row.application_name or '-'}, "
                   f"wait {row.wait_event_type or '-'}/{row.wait_event or '-'}: {row.query[:300]}",
            objects=[f"pid {row.pid}"], value=round(row.running_s, 1), threshold=critical if sev is Severity.CRITICAL
            else warning,
            remediation=f"SELECT pg_cancel_backend({row.pid});  -- then, if it does not stop: "
                        f"SELECT pg_terminate_backend({row.pid});"))
    if not out:
        n = len(df)
        out.append(Finding("activity.long_running", Severity.OK,
                           f"no statement active longer than {warning:g} s ({n} active now)", threshold=warning))
    return out


LONG_RUNNING = register(Check(
    id="activity.long_running",
    description="Active statements running longer than the threshold, with role, application, wait and query.",
    data=_long_running_data,
    judge=judge_long_running,
    thresholds=(
        Threshold("warning", 300, "seconds", "source guides 002/003: kill queries running over 5 minutes"),
        Threshold("critical", 1800, "seconds", "opsbook default: 30 minutes holds back vacuum and locks"),
    ),
    queries=("activity/long_running",),
    runbooks=("incident-triage",),
))
