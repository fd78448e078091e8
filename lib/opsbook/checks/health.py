"""health.trend: a headline number of the monthly report that worsened month over month."""
from __future__ import annotations

from ..core.findings import Finding, Severity
from .registry import Check, Threshold, register


def _shown(unit: str, v: float) -> str:
    from ..health.report import fmt  # noqa: PLC0415 - the report's own formatting, so finding and table agree

    return fmt(unit, v)


def judge_trend(df, *, warning_pct: float = 25, critical_pct: float = 100) -> list[Finding]:
    """Each judged headline (a `worse` direction) whose change against last month is worse by warning_pct or more,
    and by more than its own noise floor (min_change)."""
    out: list[Finding] = []
    judged = 0
    for r in df.itertuples():
        if not r.worse or r.value is None or r.previous is None or r.value != r.value or r.previous != r.previous:
            continue
        judged += 1
        worse_by = r.worse * r.change
        if worse_by <= 0 or abs(r.change) < r.min_change:
            continue
        pct = 100.0 * worse_by / abs(r.previous) if r.previous else float("inf")
        if pct < warning_pct:
            continue
        sev = Severity.CRITICAL if pct >= critical_pct else Severity.WARNING
        grew = "rose" if r.change > 0 else "fell"
        shown_pct = "from nothing" if pct == float("inf") else f"{pct:,.0f}% worse"
        out.append(Finding(
            "health.trend", sev, f"{r.label} {grew} to {_shown(r.unit, r.value)} ({shown_pct} than "
            f"{df.attrs.get('previous', 'last month')}: {_shown(r.unit, r.previous)})",
            objects=[r.key], value=round(pct, 1) if pct != float("inf") else None,
            threshold=critical_pct if sev is Severity.CRITICAL else warning_pct,
            remediation="Open this month's detailed report linked in its section and find what changed; "
                        "capacity-planning and incident-triage say where."))
    if not out:
        out.append(Finding("health.trend", Severity.OK,
                           f"{judged} headline numbers compared with last month, none worse by {warning_pct:g}% "
                           "or more" if judged else "no headline number has two months of data to compare yet",
                           value=judged))
    return out


TREND = register(Check(
    id="health.trend",
    description="Month over month, each headline number of the monthly health report (growth, peak connections, "
                "cache misses, rollbacks, deadlocks, temp bytes, the bill, incident runs) that got worse by more "
                "than the threshold and by more than its own noise floor.",
    judge=judge_trend,
    thresholds=(
        Threshold("warning_pct", 25, "% worse than the previous month", "opsbook default: a quarter worse in one "
                  "month is a trend worth a look at the monthly review (guides 000/002)"),
        Threshold("critical_pct", 100, "% worse than the previous month", "opsbook default: doubled in a month"),
    ),
    runbooks=("monthly-health",),
))
