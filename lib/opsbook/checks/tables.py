"""Tables: estimated bloat of tables and indexes, and what removing it would save."""
from __future__ import annotations

from ..findings import Finding, Severity
from .registry import Check, CheckContext, Threshold, register

METHOD = ("statistical estimate from planner statistics (pg_stats average widths and null fractions, reltuples): "
          "the ioguix/pgexperts method with 8-byte alignment, as postgres-checkup. Error: on a table bloated by mass "
          "updates the tests hold it within 10% of what a rewrite really returns (measured: 1%; its primary key "
          "within 10% of a fresh build, measured <1%) and within 20% of pgstattuple's dead + free bytes; it is worse for tables with wide TOASTed "
          "columns and stale statistics (run ANALYZE first), and tables never analyzed are not estimated. For an "
          "exact figure on one table: SELECT * FROM pgstattuple('schema.table').")


def bloat(ctx: CheckContext) -> pd.DataFrame:
    """Tables and btree indexes with their estimated bloat, biggest first."""
    t = ctx.db.fetch("tables/bloat")
    t["kind"] = "table"
    t["index_name"] = None
    t = t.rename(columns={"heap_bytes": "size_bytes"})
    i = ctx.db.fetch("tables/index_bloat").rename(columns={"index_bytes": "size_bytes"})
    i["kind"] = "index"
    cols = ["kind", "schema_name", "table_name", "index_name", "rows_est", "size_bytes", "expected_bytes",
            "bloat_bytes", "bloat_pct"]
    import pandas as pd  # noqa: PLC0415 - keep `opsbook checks` fast

    df = pd.concat([t[cols], i[cols]], ignore_index=True) if len(i) else t[cols]
    return df.sort_values(["bloat_bytes", "table_name"], ascending=[False, True], ignore_index=True)


def judge_bloat(df, *, warning: float = 40, critical: float = 90, min_bytes: float = 20 * 1024 ** 2) -> list[Finding]:
    out = []
    for r in df.itertuples():
        if r.bloat_bytes < min_bytes or r.bloat_pct < warning:
            continue
        sev = Severity.CRITICAL if r.bloat_pct >= critical else Severity.WARNING
        name = f"{r.schema_name}.{r.index_name if r.kind == 'index' else r.table_name}"
        fix = (f"REINDEX INDEX CONCURRENTLY {name};" if r.kind == "index" else
               f"VACUUM (ANALYZE) {r.schema_name}.{r.table_name};  -- makes the space reusable; to return it to the "
               f"disk: pg_repack, or VACUUM FULL (takes an ACCESS EXCLUSIVE lock)")
        out.append(Finding("tables.bloat", sev, f"{r.kind} {name}: about {r.bloat_pct:.0f}% bloat "
                                                f"({r.bloat_bytes / 1024 ** 2:,.1f} MB of {r.size_bytes / 1024 ** 2:,.1f} MB)",
                           detail=f"Expected {r.expected_bytes / 1024 ** 2:,.1f} MB for {r.rows_est:,.0f} rows. "
                                  f"Estimate: {METHOD}",
                           objects=[name], value=r.bloat_pct, threshold=critical if sev is Severity.CRITICAL else warning,
                           remediation=fix))
    if not out:
        total = float(df["bloat_bytes"].sum()) if len(df) else 0.0
        out.append(Finding("tables.bloat", Severity.OK,
                           f"no table or index above {warning:g}% estimated bloat and {min_bytes / 1024 ** 2:,.0f} MB",
                           detail=f"{len(df)} relations estimated, {total / 1024 ** 2:,.1f} MB estimated bloat in all. "
                                  f"Estimate: {METHOD}", threshold=warning))
    return out


BLOAT = register(Check(
    id="tables.bloat",
    description="Estimated table and btree index bloat (statistical estimate from pg_stats, ioguix method) and the "
                "space a rewrite would return.",
    data=bloat, judge=judge_bloat,
    thresholds=(Threshold("warning", 40, "% of the relation's size", "postgres-checkup F004: warning at 40% heap bloat"),
                Threshold("critical", 90, "% of the relation's size", "postgres-checkup F004: critical at 90%"),
                Threshold("min_bytes", 20 * 1024 ** 2, "bytes of estimated bloat",
                          "splinter 0020 table_bloat: ignore less than 20 MiB of waste")),
    queries=("tables/bloat", "tables/index_bloat"), runbooks=("capacity-planning",)))
