"""Vacuum: dead tuples piling up where autovacuum falls behind, and planner statistics gone stale."""
from __future__ import annotations

from ..core.findings import Finding, Severity
from .registry import Check, CheckContext, Threshold, register
from .standby import QUERY as STANDBY, mark, not_judged, of


def _missing(x) -> bool:
    return x is None or x != x  # None or NaN


def dead_tuples(ctx: CheckContext):
    return mark(ctx.db.fetch("vacuum/dead_tuples"), ctx)


def judge_dead_tuples(df, *, min_dead: float = 1000, warning: float = 20, critical: float = 50) -> list[Finding]:
    if of(df) is not None:  # a standby counts no dead tuples of its own: the primary's vacuums decide
        return [not_judged("vacuum.dead_tuples", of(df), "dead tuples and vacuum times", len(df))]
    out = []
    for r in df.itertuples():
        if r.n_dead_tup < min_dead or (r.dead_pct or 0) < warning:
            continue
        sev = Severity.CRITICAL if r.dead_pct >= critical else Severity.WARNING
        name = f"{r.schema_name}.{r.table_name}"
        behind = r.n_dead_tup > r.autovacuum_trigger_tuples
        why = ("autovacuum is OFF for this table" if not r.autovacuum_enabled else
               f"past the autovacuum trigger of {r.autovacuum_trigger_tuples:,.0f} dead tuples: autovacuum is "
               "falling behind (long transactions holding the xmin horizon, too few workers, cost limits)"
               if behind else "below its autovacuum trigger, yet a large share of the table")
        last = "never vacuumed" if _missing(r.since_vacuum_s) else f"last vacuum {r.since_vacuum_s / 3600:,.1f} h ago"
        out.append(Finding("vacuum.dead_tuples", sev, f"{name}: {r.n_dead_tup:,.0f} dead tuples ({r.dead_pct:.0f}%)",
                           detail=f"{r.n_live_tup:,.0f} live rows; {why}; {last}.", objects=[name],
                           value=r.dead_pct, threshold=critical if sev is Severity.CRITICAL else warning,
                           remediation=f"VACUUM (ANALYZE, VERBOSE) {name};" + (
                               f"  ALTER TABLE {name} RESET (autovacuum_enabled);" if not r.autovacuum_enabled else
                               "  -- then look for long transactions (pg_stat_activity.backend_xmin)")))
    if not out:
        out.append(Finding("vacuum.dead_tuples", Severity.OK,
                           f"no table with {min_dead:,.0f}+ dead tuples making up {warning:g}% or more of it",
                           detail=f"{len(df)} tables have some dead tuples.", threshold=warning))
    return out


DEAD_TUPLES = register(Check(
    id="vacuum.dead_tuples",
    description="Tables with many dead tuples: share of the table, the autovacuum trigger point (per-table "
                "settings honoured), autovacuum disabled or falling behind.",
    data=dead_tuples, judge=judge_dead_tuples,
    thresholds=(Threshold("min_dead", 1000, "dead tuples", "source guide 001: n_dead_tup > 1000"),
                Threshold("warning", 20, "% dead of all tuples",
                          "PostgreSQL docs: autovacuum_vacuum_scale_factor defaults to 0.2"),
                Threshold("critical", 50, "% dead of all tuples", "opsbook default: half the table is dead")),
    queries=("vacuum/dead_tuples", STANDBY), runbooks=("capacity-planning",)))


def stale_stats(ctx: CheckContext):
    return mark(ctx.db.fetch("vacuum/stale_stats"), ctx)


def judge_stale_stats(df, *, min_rows: float = 1000, stale_days: float = 7, min_mod_pct: float = 10) -> list[Finding]:
    if of(df) is not None:  # last_analyze is empty on a standby although the primary's statistics are replicated
        return [not_judged("vacuum.stale_stats", of(df), "analyze times and rows changed since", len(df))]
    out = []
    never = df[df["never_analyzed"] & (df["rows_est"] >= min_rows)]
    if len(never):
        names = [f"{r.schema_name}.{r.table_name}" for r in never.itertuples()]
        out.append(Finding("vacuum.stale_stats", Severity.WARNING,
                           f"{len(never)} table(s) with {min_rows:,.0f}+ rows never analyzed",
                           detail="The planner guesses row counts and value distributions for them: bad plans follow.",
                           objects=names, value=len(never), threshold=min_rows,
                           remediation="\n".join(f"ANALYZE {n};" for n in names[:20])))
    old = df[~df["never_analyzed"] & (df["since_analyze_s"] >= stale_days * 86400) & (df["mod_pct"] >= min_mod_pct)
             & (df["rows_est"] >= min_rows)]
    if len(old):
        names = [f"{r.schema_name}.{r.table_name}" for r in old.itertuples()]
        out.append(Finding("vacuum.stale_stats", Severity.WARNING,
                           f"{len(old)} table(s) not analyzed for {stale_days:g}+ days despite {min_mod_pct:g}%+ "
                           "of rows changed", objects=names, value=len(old), threshold=stale_days,
                           detail="Autoanalyze should have run at autovacuum_analyze_scale_factor (10%) changed rows; "
                                  "check that autovacuum is on for these tables.",
                           remediation="\n".join(f"ANALYZE {n};" for n in names[:20])))
    if not out:
        out.append(Finding("vacuum.stale_stats", Severity.OK, f"statistics current on all {len(df)} tables with rows",
                           threshold=stale_days))
    return out


STALE_STATS = register(Check(
    id="vacuum.stale_stats",
    description="Tables never analyzed, or not analyzed for days while many rows changed (planner statistics "
                "stale).",
    data=stale_stats, judge=judge_stale_stats,
    thresholds=(Threshold("min_rows", 1000, "rows", "source guide 001 scale: tables past 1000 rows matter"),
                Threshold("stale_days", 7, "days since the last analyze",
                          "source guides 000/002: weekly performance review"),
                Threshold("min_mod_pct", 10, "% of rows changed since the last analyze",
                          "PostgreSQL docs: autovacuum_analyze_scale_factor defaults to 0.1")),
    queries=("vacuum/stale_stats", STANDBY), runbooks=("capacity-planning",)))
