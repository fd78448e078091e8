"""Cost analysis: the Supabase bill from measured usage, line by line, and what would lower it."""
from __future__ import annotations

from typing import Any

CHECKS = ["cost.over_quota", "cost.plan_fit", "cost.compute_fit", "cost.savings"]
# The runbook parameters the analysis reads (the notebook passes them through as they are).
PARAMS = ("plan", "compute", "egress_gb", "cached_egress_gb", "edge_invocations", "realtime_messages",
          "realtime_peak_connections", "image_transformations", "usage_csv", "spend_cap", "pitr_days", "ipv4",
          "custom_domain", "read_replicas", "log_drains", "disk_gb", "archive_days", "archive_tables")


def thresholds_with(thresholds: dict, savings_min_usd: float | None) -> dict:
    """The runbook's threshold overrides plus `savings_min_usd` as cost.savings' min_usd, when given."""
    if savings_min_usd is None:
        return dict(thresholds)
    return {**thresholds, "cost.savings": {**thresholds.get("cost.savings", {}), "min_usd": savings_min_usd}}


def analyse(rb: Any):
    """The analysis behind the cost runbook, for a connected `opsbook.run.context.Runbook` (computed once)."""
    from .analysis import for_session  # noqa: PLC0415

    return for_session(rb.db, rb.target, rb.config, rb.params,
                       compute_thresholds=rb.thresholds_for("cost.compute_fit"))


def record(rb: Any, a: Any) -> dict[str, float]:
    """Record monthly_cost_usd, one cost_<line>_usd per bill line, and the savings of the best lever; nothing
    when no bill was computed (a target opsbook has no price list for)."""
    if not a:
        return {}
    metrics = a.bill.metrics()
    metrics["monthly_cost_uncapped_usd"] = a.bill.uncapped_usd
    best = max((w.savings_usd for w in a.whatifs if w.fits), default=0.0)
    metrics["best_saving_usd"] = max(best, 0.0) + 0.0  # never -0.0
    for name, value in metrics.items():
        rb.record(name, value)
    return metrics
