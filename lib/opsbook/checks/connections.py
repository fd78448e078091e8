"""Connections: how many are in use against the limit, and by whom."""
from __future__ import annotations

from ..findings import Finding, Severity
from .registry import Check, CheckContext, Threshold, register


def connection_usage(ctx: CheckContext):
    """Connections by state/role/application/client; the limits ride along in df.attrs."""
    df = ctx.db.fetch("connections/by_state")
    limits = ctx.db.fetch("connections/limits").iloc[0].to_dict()
    df.attrs.update({k: int(v) for k, v in limits.items()})
    return df


def judge_saturation(df, *, warning: float = 80, critical: float = 95) -> list[Finding]:
    max_conn, reserved = df.attrs["max_connections"], df.attrs["reserved_connections"]
    used = int(df.attrs.get("used_connections", df["connections"].sum()))
    usable = max(max_conn - reserved, 1)
    pct = 100.0 * used / usable
    by_state = df.groupby("state")["connections"].sum().sort_values(ascending=False)
    states = ", ".join(f"{n} {s}" for s, n in by_state.items())
    top = df.groupby("application_name")["connections"].sum().sort_values(ascending=False).head(3)
    apps = ", ".join(f"{a or '(no application_name)'}: {n}" for a, n in top.items())
    detail = (f"{used} of {usable} usable connections ({max_conn} max_connections - {reserved} reserved): {states}. "
              f"Top applications: {apps}.")
    sev = Severity.CRITICAL if pct >= critical else Severity.WARNING if pct >= warning else Severity.OK
    remediation = ("" if sev is Severity.OK else
                   "Find who holds them (table below); terminate idle sessions older than an hour; route the app "
                   "through the pooler (Supavisor, transaction mode); raise compute size if the load is real.")
    return [Finding("connections.saturation", sev, f"{pct:.0f}% of usable connections in use ({used}/{usable})",
                    detail=detail, value=round(pct, 1), threshold=critical if sev is Severity.CRITICAL else warning,
                    remediation=remediation)]


SATURATION = register(Check(
    id="connections.saturation",
    description="Client connections in use against max_connections minus reserved slots, by state, role, "
                "application and client.",
    data=connection_usage,
    judge=judge_saturation,
    thresholds=(
        Threshold("warning", 80, "% of usable connections", "source guides 001/002: alert at 80% of the limit"),
        Threshold("critical", 95, "% of usable connections", "opsbook default: new connections fail at 100%"),
    ),
    queries=("connections/by_state", "connections/limits"),
    runbooks=("incident-triage",),
))
