"""Auth usage: monthly active users against the plan's quota."""
from __future__ import annotations

from ..core.findings import Finding, Severity, grade
from ..history import capacity as cap
from .registry import Check, CheckContext, Threshold, register
from ..database.supabase import MAU_WINDOW_DAYS, monthly_active_users


def mau(ctx: CheckContext) -> pd.DataFrame:
    """Monthly active users (supabase.monthly_active_users: the definition cost-analysis uses too), all users,
    and the MAU history."""
    df = monthly_active_users(ctx.db)
    lim = cap.limits_for(ctx)
    series = cap.history_series(ctx, "mau")
    fc = cap.fit(series)
    df.attrs.update(quota=lim.mau, forecast=fc,
                    days=cap.days_table(fc, float(df["mau"].iloc[0]), [lim.mau] if lim.mau else []))
    return df


def judge_mau(df, *, warning: float = 80, critical: float = 100) -> list[Finding]:
    users, total, quota, fc = float(df["mau"].iloc[0]), float(df["users_total"].iloc[0]), df.attrs["quota"], \
        df.attrs["forecast"]
    trend = f" Trend: {fc.growth_per_day:+,.1f} MAU/day ({fc.describe()})." if fc.ok else ""
    base = (f"{users:,.0f} users active in the last {MAU_WINDOW_DAYS} days, of {total:,.0f}, from "
            f"{df.attrs.get('source', 'auth.users')}. Supabase counts a user active when they sign in or refresh a "
            "token in the billing cycle.")
    if quota is None:
        return [Finding("auth.mau", Severity.INFO, f"{users:,.0f} monthly active users", detail=base + trend,
                        value=users)]
    pct = 100 * users / quota.value
    sev = grade(pct, warning, critical)
    days = df.attrs["days"]
    when = f" 80% of the quota {cap.days_text(days['days_to_trigger'].iloc[0])}." if len(days) and fc.ok else ""
    return [Finding("auth.mau", sev, f"{users:,.0f} monthly active users, {pct:.1f}% of the {quota.name} quota "
                                     f"({quota.value:,.0f})",
                    detail=f"{base}{trend}{when} {quota.source}.", value=round(pct, 1),
                    threshold=critical if sev is Severity.CRITICAL else warning,
                    remediation="" if sev is Severity.OK else
                    "Budget the overage (0.00325 USD per MAU past the quota on paid plans) or move up a plan; "
                    "guide 004: Pro to Team past 100K active users.")]


MAU = register(Check(
    id="auth.mau",
    description="Supabase Auth monthly active users (signed in, or refreshed a token where auth.audit_log_entries "
                "exists, within 30 days; the definition cost-analysis uses) against the plan's "
                "quota (Free 50,000; Pro/Team 100,000), with the trend from history.",
    data=mau, judge=judge_mau,
    thresholds=(Threshold("warning", 80, "% of the MAU quota", "source guide 000: scaling triggers at 80%"),
                Threshold("critical", 100, "% of the MAU quota",
                          "docs/sources/supabase-pricing-2026.md: overage past the quota")),
    queries=("auth/sources", "auth/mau", "auth/mau_audit"), runbooks=("capacity-planning",)))
