"""Connections: how many are in use against the limit, by whom, and which idle ones could go."""
from __future__ import annotations

from ..core.display import human_seconds
from ..core.findings import Finding, Severity, grade
from .registry import Check, CheckContext, Threshold, register
from .standby import QUERY as STANDBY, mark, of
from .visibility import partial


def limits(ctx: CheckContext) -> dict[str, int]:
    """max_connections, reserved slots and client backends in use now."""
    return {k: int(v) for k, v in ctx.db.fetch("connections/limits").iloc[0].to_dict().items()}


def usable(attrs: dict) -> int:
    return max(attrs["max_connections"] - attrs["reserved_connections"], 1)


def connection_usage(ctx: CheckContext):
    """Connections by state/role/application/client; the limits ride along in df.attrs."""
    df = ctx.db.fetch("connections/by_state")
    df.attrs.update(limits(ctx))
    return df


def judge_saturation(df, *, warning: float = 80, critical: float = 95) -> list[Finding]:
    max_conn, reserved = df.attrs["max_connections"], df.attrs["reserved_connections"]
    used = int(df.attrs.get("used_connections", df["connections"].sum()))
    limit = usable(df.attrs)
    pct = 100.0 * used / limit
    by_state = df.groupby("state")["connections"].sum().sort_values(ascending=False)
    states = ", ".join(f"{n} {s}" for s, n in by_state.items())
    top = df.groupby("application_name")["connections"].sum().sort_values(ascending=False).head(3)
    apps = ", ".join(f"{a or '(no application_name)'}: {n}" for a, n in top.items())
    detail = (f"{used} of {limit} usable connections ({max_conn} max_connections - {reserved} reserved): {states}. "
              f"Top applications: {apps}.")
    sev = grade(pct, warning, critical)
    remediation = ("" if sev is Severity.OK else
                   "Terminate idle sessions older than an hour (connections.idle) and see who holds the rest "
                   "(table below). Then route the app through the pooler (Supavisor, transaction mode), and raise "
                   "the compute size if the load is real.")
    return [Finding("connections.saturation", sev, f"{pct:.0f}% of usable connections in use ({used}/{limit})",
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


def idle_sessions(ctx: CheckContext):
    """Idle client sessions, longest idle first; the connection limits in df.attrs."""
    df = ctx.db.fetch("connections/idle")
    df.attrs.update(limits(ctx))
    return mark(df, ctx)


def judge_idle(df, *, idle_s: float = 3600, warning: float = 20, critical: float = 50) -> list[Finding]:
    hidden = df["hidden"].fillna(False).astype(bool) if "hidden" in df.columns else df["pid"].map(lambda _: False)
    unseen = partial("connections.idle", int(hidden.sum()), "sessions of other roles are hidden from this role (no "
                     "pg_read_all_stats)", "Whether they are idle, and for how long, cannot be seen.")
    attrs, df = df.attrs, df[~hidden]
    df.attrs = attrs
    old = df[df["idle_s"] >= idle_s]
    if old.empty:
        return [Finding("connections.idle", Severity.OK,
                        f"no session idle longer than {human_seconds(idle_s)} ({len(df)} idle now)",
                        value=0, threshold=idle_s)] + unseen
    pct = 100.0 * len(old) / usable(df.attrs)
    sev = grade(pct, warning, critical)
    if sev is Severity.OK:
        sev = Severity.INFO  # a few long-idle sessions are worth knowing, not an incident
    who = old.groupby(["application_name", "role"]).size().sort_values(ascending=False).head(3)
    holders = ", ".join(f"{app or '(no application_name)'} as {role}: {n}" for (app, role), n in who.items())
    pids = ", ".join(str(p) for p in old["pid"].head(50))
    standby = of(df)  # the sessions are this standby's own (signals work here); role settings live on the primary
    timeout = ("ALTER ROLE ... SET idle_session_timeout" if standby is None else
               f"on {standby.primary}, where role settings are written and replicate here: ALTER ROLE ... SET "
               f"idle_session_timeout")
    return [Finding(
        "connections.idle", sev,
        f"{len(old)} sessions idle for more than {human_seconds(idle_s)} ({pct:.0f}% of usable connections)",
        detail=f"Longest idle {human_seconds(old['idle_s'].max())}. Held by {holders}.",
        objects=[f"pid {p}" for p in old["pid"]], value=len(old),
        threshold=critical if sev is Severity.CRITICAL else warning,
        remediation=f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ({pids}) "
                    f"AND state = 'idle';  -- guide 001; then give the pool an idle timeout "
                    f"(or {timeout}) so they do not come back")] + unseen


IDLE = register(Check(
    id="connections.idle",
    description="Idle client sessions older than the threshold: the source guides' candidates for termination; "
                "graded by the share of usable connections they hold.",
    data=idle_sessions,
    judge=judge_idle,
    thresholds=(
        Threshold("idle_s", 3600, "seconds idle", "source guide 001: kill idle connections older than 1 hour"),
        Threshold("warning", 20, "% of usable connections held by such sessions",
                  "opsbook default: a fifth of the budget parked in forgotten sessions"),
        Threshold("critical", 50, "% of usable connections held by such sessions",
                  "opsbook default: half the budget idle leaves no room for a burst"),
    ),
    queries=("connections/idle", "connections/limits", STANDBY),
    runbooks=("incident-triage",),
))
