"""Cost analysis: the Supabase bill from measured usage, line by line, and what would lower it."""
from __future__ import annotations

from typing import Any

CHECKS = ["cost.over_quota", "cost.plan_fit", "cost.compute_fit", "cost.savings"]


def analyse(rb: Any):
    """The analysis behind the cost runbook, for a connected `opsbook.context.Runbook` (computed once)."""
    from .analysis import for_session  # noqa: PLC0415

    return for_session(rb.db, rb.target, rb.config, rb.params,
                       compute_thresholds=rb.thresholds_for("cost.compute_fit"))


def record(rb: Any, a: Any) -> dict[str, float]:
    """Record monthly_cost_usd, one cost_<line>_usd per bill line, and the savings of the best lever."""
    metrics = a.bill.metrics()
    metrics["monthly_cost_uncapped_usd"] = a.bill.uncapped_usd
    best = max((w.savings_usd for w in a.whatifs if w.fits), default=0.0)
    metrics["best_saving_usd"] = max(best, 0.0)
    for name, value in metrics.items():
        rb.record(name, value)
    return metrics
