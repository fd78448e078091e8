"""Why no index helps a statement, from where its plan spends its cost."""
from __future__ import annotations

from .plans import LARGE_ROWS, PlanSummary


def why_no_index(summary: PlanSummary, reltuples: dict, never_analyzed: set, min_gain_pct: float) -> str:
    tables = {x.relation for x in summary.nodes if x.relation}
    stale = sorted(f"{s}.{t}" for s, t in tables & never_analyzed)
    if stale:
        return (f"statistics missing: {', '.join(stale)} never analyzed, so the planner guesses; run ANALYZE "
                "and tune again")
    top = summary.top(1)[0] if summary.nodes else None
    if top is None:
        return "no plan nodes"
    share = top.self_cost / summary.total_cost * 100 if summary.total_cost else 0
    if top.kind in ("Sort", "Incremental Sort") and share >= 30:
        return f"the cost sits in a sort ({share:.0f}% of the plan): more work_mem, or an index in its order"
    if top.kind in ("Function Scan", "ProjectSet", "Result") and share >= 30:
        return f"the cost sits in a function ({top.kind}, {share:.0f}% of the plan)"
    if top.kind in ("Aggregate", "HashAggregate", "GroupAggregate", "WindowAgg") and share >= 30:
        return f"the cost sits in an aggregate ({top.kind}, {share:.0f}% of the plan) over the rows it must read"
    scans = [x for x in summary.nodes if x.kind == "Seq Scan" and x.relation]
    if scans and all(reltuples.get(x.relation, 0) < LARGE_ROWS for x in scans):
        return "its tables are small: a sequential scan is the cheapest plan"
    if any(x.kind == "Seq Scan" and "Filter" not in x.conditions for x in scans):
        return "it reads whole tables (no condition an index could serve)"
    served = sorted({x.conditions["Index Name"] for x in summary.nodes if x.conditions.get("Index Name")})
    large_seq = [x for x in scans if reltuples.get(x.relation, 0) >= LARGE_ROWS]
    if served and not large_seq:
        return (f"it already reads through an index ({', '.join(served[:3])}); no candidate made its plan "
                f"{min_gain_pct:.0f}% cheaper")
    return f"no candidate index made its plan {min_gain_pct:.0f}% cheaper"
