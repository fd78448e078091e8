"""The month's headline numbers, each beside the previous month's: from the history store, else earlier sidecars."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .metrics import ReportMetrics
from .month import Month


@dataclass(frozen=True)
class Headline:
    """How one number is read and judged: its unit, which way is worse, and the change too small to matter."""

    key: str
    label: str
    unit: str  # bytes, count, pct, usd, s
    worse: int  # +1: higher is worse; -1: lower is worse; 0: not judged (context only)
    min_change: float  # an absolute change below this is noise, whatever its percentage
    source: str  # history | sidecar


HEADLINES = (
    Headline("database_size_bytes", "database size at month end", "bytes", 0, 0, "history"),
    Headline("growth_bytes", "growth during the month", "bytes", +1, 10 * 1024 ** 2, "history"),
    Headline("connections_peak", "peak connections", "count", +1, 5, "history"),
    Headline("cache_miss_pct", "cache misses during the month (100% - hit ratio)", "pct", +1, 0.5, "history"),
    Headline("rollback_pct", "rolled-back transactions", "pct", +1, 1.0, "history"),
    Headline("deadlocks", "deadlocks", "count", +1, 5, "history"),
    Headline("temp_bytes", "temporary file bytes (sorts past work_mem)", "bytes", +1, 100 * 1024 ** 2, "history"),
    Headline("mau", "monthly active users", "count", 0, 0, "history"),
    Headline("monthly_cost_usd", "estimated monthly bill", "usd", +1, 5, "sidecar"),
    Headline("incident_runs", "incidents (incident-triage runs started by a person)", "count", +1, 2, "sidecar"),
    Headline("scheduled_triage_runs", "scheduled incident-triage runs (routine, not incidents)", "count", 0, 0,
             "sidecar"),
)
BY_KEY = {h.key: h for h in HEADLINES}


def _last(s) -> float | None:
    return None if s is None or not len(s) else float(s["value"].iloc[-1])


def _delta_sum(store, target: str, metric: str, month: Month) -> float | None:
    r = store.rates(target, metric, month.start, month.end)
    return None if not len(r) else float(r["delta"].sum())


def from_history(store, target: str, month: Month) -> dict[str, float | None]:
    """Numbers of one month from the snapshot store (None where it holds too little)."""
    if store is None:
        return {}
    size = store.series(target, "database_size_bytes", month.start, month.end)
    conns = store.series(target, "connections_total", month.start, month.end)
    out: dict[str, float | None] = {
        "database_size_bytes": _last(size),
        "growth_bytes": (float(size["value"].iloc[-1] - size["value"].iloc[0]) if len(size) >= 2 else None),
        "connections_peak": float(conns["value"].max()) if len(conns) else None,
        "mau": _last(store.series(target, "mau", month.start, month.end)),
        "deadlocks": _delta_sum(store, target, "deadlocks", month),
        "temp_bytes": _delta_sum(store, target, "temp_bytes", month),
    }
    hit, read = _delta_sum(store, target, "blks_hit", month), _delta_sum(store, target, "blks_read", month)
    out["cache_miss_pct"] = (100.0 * read / (hit + read)) if hit is not None and read is not None and hit + read \
        else None
    commit, rollback = (_delta_sum(store, target, "xact_commit", month),
                        _delta_sum(store, target, "xact_rollback", month))
    out["rollback_pct"] = (100.0 * rollback / (commit + rollback)) if commit is not None and rollback is not None \
        and commit + rollback else None
    return out


def from_sidecars(reports: ReportMetrics, target: str, month: Month) -> dict[str, float | None]:
    """Numbers of one month from earlier reports; the incident count only when any report of the month exists
    (no reports at all means nothing was watching, not zero incidents)."""
    runs = reports.runs(target=target, start=month.start, end=month.end)
    # a triage the scheduler or a fleet ran is a routine check, not an incident: only a person's run counts
    triage = [r for r in runs if r.runbook == "incident-triage"]
    incidents = sum(1 for r in triage if r.by_a_person)
    # the month's newest cost analysis, or none: one that priced nothing (no plan, not Supabase) leaves no bill,
    # and an older run's bill is not this target's bill any more
    cost = reports.latest("cost-analysis", target, start=month.start, before=month.end)
    value = cost.metrics.get("monthly_cost_usd") if cost is not None else None
    return {"monthly_cost_usd": float(value) if isinstance(value, (int, float)) and not isinstance(value, bool)
            else None,
            "incident_runs": float(incidents) if runs else None,
            "scheduled_triage_runs": float(len(triage) - incidents) if runs else None}


def table(store, reports: ReportMetrics, target: str, month: Month):
    """DataFrame[key, label, unit, worse, min_change, value, previous, change, change_pct] for the month."""
    import pandas as pd  # noqa: PLC0415

    now = {**from_history(store, target, month), **from_sidecars(reports, target, month)}
    prev_month = month.previous()
    before = {**from_history(store, target, prev_month), **from_sidecars(reports, target, prev_month)}
    rows: list[dict[str, Any]] = []
    for h in HEADLINES:
        v, p = now.get(h.key), before.get(h.key)
        change = None if v is None or p is None else v - p
        pct = None if change is None or not p else 100.0 * change / abs(p)
        rows.append({"key": h.key, "label": h.label, "unit": h.unit, "worse": h.worse, "min_change": h.min_change,
                     "value": v, "previous": p, "change": change, "change_pct": pct})
    df = pd.DataFrame(rows)
    df.attrs.update(month=month.key, previous=prev_month.key, target=target)
    return df
