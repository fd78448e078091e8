"""Tables: estimated bloat of tables and indexes, and what removing it would save."""
from __future__ import annotations

from ..core.findings import Finding, Severity
from .registry import Check, CheckContext, Threshold, register
from .standby import QUERY as STANDBY, mark, of, relay
from .visibility import DATA_GRANT, partial

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
    df = df.assign(method="estimate")
    unseen = ctx.db.fetch("tables/unestimated")
    measured = _measure(ctx, unseen)
    if len(measured):
        df = pd.concat([df, measured[cols + ["method"]]], ignore_index=True)
        unseen = unseen[~unseen["table_oid"].isin(measured["table_oid"])]
    df = df.sort_values(["bloat_bytes", "table_name"], ascending=[False, True], ignore_index=True)
    df.attrs["unestimated"] = unseen.reset_index(drop=True)
    return mark(df, ctx)


MEASURE_AT_MOST = 10  # tables measured with pgstattuple_approx per run: it reads every page not all-visible
MEASURE_MIN_BYTES = 1024 ** 2  # smaller tables cannot hold the 20 MB of waste the check reports


def _measure(ctx: CheckContext, unseen):
    """pgstattuple_approx for the largest tables the estimate cannot see, where this role may run it."""
    import pandas as pd  # noqa: PLC0415

    can = unseen[unseen["pgstattuple_schema"].notna() & (unseen["heap_bytes"].fillna(0) >= MEASURE_MIN_BYTES)]
    can = can.head(MEASURE_AT_MOST)
    if can.empty:
        return pd.DataFrame(columns=["table_oid"])
    from ..database import sql as sqlfiles  # noqa: PLC0415

    text = sqlfiles.load("tables/approx", ctx.db.server_version_num).replace(
        "{{pgstattuple}}", can["pgstattuple_schema"].iloc[0])
    got = ctx.db.query(text, _name="tables/approx", oids=[int(o) for o in can["table_oid"]])
    got = got.merge(can[["table_oid", "schema_name", "table_name"]], on="table_oid")
    return got.assign(kind="table", index_name=None, expected_bytes=got["size_bytes"] - got["bloat_bytes"],
                      method="pgstattuple_approx")


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
        measured = getattr(r, "method", "estimate") == "pgstattuple_approx"
        how = (f"Measured with pgstattuple_approx (the table has no planner statistics this role can read): "
               f"{r.bloat_bytes / 1024 ** 2:,.1f} MB dead or free for about {r.rows_est:,.0f} live rows."
               if measured else f"Expected {r.expected_bytes / 1024 ** 2:,.1f} MB for {r.rows_est:,.0f} rows. "
                                f"Estimate: {METHOD}")
        out.append(Finding("tables.bloat", sev, f"{r.kind} {name}: about {r.bloat_pct:.0f}% bloat "
                                                f"({r.bloat_bytes / 1024 ** 2:,.1f} MB of {r.size_bytes / 1024 ** 2:,.1f} MB)",
                           detail=how,
                           objects=[name], value=r.bloat_pct, threshold=critical if sev is Severity.CRITICAL else warning,
                           remediation=fix))
    if not out:
        total = float(df["bloat_bytes"].sum()) if len(df) else 0.0
        out.append(Finding("tables.bloat", Severity.OK,
                           f"no table or index above {warning:g}% estimated bloat and {min_bytes / 1024 ** 2:,.0f} MB",
                           detail=f"{len(df)} relations estimated, {total / 1024 ** 2:,.1f} MB estimated bloat in all. "
                                  f"Estimate: {METHOD}", threshold=warning))
    return relay(out + _unestimated(df.attrs.get("unestimated"), min_bytes), of(df))


def _unestimated(unseen, min_bytes: float) -> list[Finding]:
    """What the estimate could not see: never-analyzed tables (as big as the check reports), unreadable ones."""
    if unseen is None or not len(unseen):
        return []
    out = []
    size = unseen["heap_bytes"]
    never = unseen[(unseen["reason"] == "never analyzed") & (size.isna() | (size >= min_bytes))]  # NaN: locked
    if len(never):
        names = [f"{r.schema_name}.{r.table_name}" for r in never.itertuples()]
        out.append(Finding(
            "tables.bloat", Severity.INFO,
            f"{len(never)} table{'s' * (len(never) != 1)} of {min_bytes / 1024 ** 2:,.0f} MB or more could not be "
            f"estimated: no planner statistics (never analyzed)",
            detail=f"{', '.join(names[:10])}{', ...' if len(names) > 10 else ''}: "
                   f"{never['heap_bytes'].sum() / 1024 ** 2:,.1f} MB whose bloat is unknown, not zero"
                   + (f" ({never['heap_bytes'].isna().sum()} of unknown size: an ACCESS EXCLUSIVE lock is held or "
                      "queued on them)." if never["heap_bytes"].isna().any() else "."),
            objects=names[:20], value=len(never),
            remediation=f"ANALYZE {', '.join(names[:10])};  -- or CREATE EXTENSION pgstattuple; to have them measured"))
    hidden = unseen[unseen["reason"] == "not readable"]
    names = ", ".join(f"{r.schema_name}.{r.table_name}" for r in hidden.head(10).itertuples())
    return out + partial("tables.bloat", len(hidden), "tables with data this role may not read (pg_stats shows "
                         "it no statistics for them)",
                         f"Their bloat could not be estimated: {names}{', ...' if len(hidden) > 10 else ''}.",
                         DATA_GRANT + "; or CREATE EXTENSION pgstattuple and GRANT pg_stat_scan_tables (in pg_monitor) "
                         "to have them measured")


BLOAT = register(Check(
    id="tables.bloat",
    description="Estimated table and btree index bloat (statistical estimate from pg_stats, ioguix method) and the "
                "space a rewrite would return; tables without statistics are measured with pgstattuple_approx where "
                "installed, else said to be unknown.",
    data=bloat, judge=judge_bloat,
    thresholds=(Threshold("warning", 40, "% of the relation's size", "postgres-checkup F004: warning at 40% heap bloat"),
                Threshold("critical", 90, "% of the relation's size", "postgres-checkup F004: critical at 90%"),
                Threshold("min_bytes", 20 * 1024 ** 2, "bytes of estimated bloat",
                          "splinter 0020 table_bloat: ignore less than 20 MiB of waste")),
    queries=("tables/bloat", "tables/index_bloat", "tables/unestimated", "tables/approx", STANDBY),
    runbooks=("capacity-planning",)))
