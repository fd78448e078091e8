"""Connections headroom: peak connections over the history window against the compute size's limits."""
from __future__ import annotations

from ..core.findings import Finding, Severity, grade
from ..history import capacity as cap
from .registry import Check, CheckContext, Threshold, register


def headroom(ctx: CheckContext) -> pd.DataFrame:
    """One row per limit (server max_connections, the compute size's direct and pooler limits): peak and now."""
    now = ctx.db.fetch("connections/limits").iloc[0]
    used_now = float(now["used_connections"])
    series = cap.history_series(ctx, "connections_total")
    peak = max(float(series["value"].max()) if len(series) else 0.0, used_now)
    peak_ts = series.loc[series["value"].idxmax(), "ts"] if len(series) and series["value"].max() >= used_now else None
    lim = cap.limits_for(ctx)
    usable = float(now["max_connections"] - now["reserved_connections"])
    rows = [{"limit": "server max_connections less reserved", "limit_value": usable, "source": "the server now"}]
    if lim.max_connections:
        rows.append({"limit": lim.max_connections.name, "limit_value": float(lim.max_connections.value),
                     "source": lim.max_connections.source})
    if lim.pooler_max_clients:
        rows.append({"limit": lim.pooler_max_clients.name, "limit_value": float(lim.pooler_max_clients.value),
                     "source": lim.pooler_max_clients.source})
    import pandas as pd  # noqa: PLC0415 - keep `opsbook checks` fast

    df = pd.DataFrame(rows)
    df["peak_connections"] = peak
    df["now_connections"] = used_now
    df["pct_used"] = 100 * peak / df["limit_value"]
    df.attrs.update(peak=peak, peak_ts=peak_ts, used_now=used_now, history_points=len(series),
                    window_days=cap.params(ctx)["window_days"], series=series)
    return df


def judge_headroom(df, *, warning: float = 80, critical: float = 95) -> list[Finding]:
    peak, n = df.attrs["peak"], df.attrs["history_points"]
    direct = df[~df["limit"].str.contains("pooler")]
    worst = direct.sort_values("pct_used", ascending=False).iloc[0]
    pct = float(worst["pct_used"])
    sev = grade(pct, warning, critical)
    over = (f"peak {peak:,.0f} over {n} snapshots in the last {df.attrs['window_days']:,.0f} days"
            if n else f"{peak:,.0f} now (no history: the peak over time is unknown)")
    lines = "; ".join(f"{r.limit}: {r.limit_value:,.0f} ({r.pct_used:.0f}%)" for r in df.itertuples())
    return [Finding("connections.headroom", sev, f"connections {over}: {pct:.0f}% of {worst['limit']}",
                    detail=f"{lines}. Direct connections count against max_connections; clients of the pooler "
                           f"(Supavisor) count against its limit instead.",
                    value=round(pct, 1), threshold=critical if sev is Severity.CRITICAL else warning,
                    remediation="" if sev is Severity.OK else
                    "Route serverless and short-lived clients through the pooler in transaction mode, close idle "
                    "sessions, and move to a larger compute size if the load is real (guide 002: upgrade at > 80% "
                    "connection use).")]


HEADROOM = register(Check(
    id="connections.headroom",
    description="Peak client connections over the history window (and now) against max_connections and the "
                "compute size's direct and pooler limits (docs/sources/supabase-pricing-2026.md, S13).",
    data=headroom, judge=judge_headroom,
    thresholds=(Threshold("warning", 80, "% of the direct connection limit",
                          "source guide 002: upgrade trigger at > 80% connection utilization"),
                Threshold("critical", 95, "% of the direct connection limit",
                          "opsbook default: new connections fail at 100%")),
    queries=("connections/limits",), runbooks=("capacity-planning",)))
