"""Indexes: unused, redundant, invalid, and missing under foreign keys."""
from __future__ import annotations

from ..core.findings import Finding, Severity
from .registry import Check, CheckContext, Threshold, register
from .standby import QUERY as STANDBY, Standby, mark, of, relay

MB = 1024 ** 2


def _mb(n: float) -> str:
    return f"{n / MB:,.1f} MB"


# ---------------------------------------------------------------- indexes.unused
def unused(ctx: CheckContext) -> pd.DataFrame:
    """Every index with its scans; how long the statistics have been collecting rides along in attrs."""
    df = ctx.db.fetch("indexes/usage")
    w = ctx.db.fetch("indexes/stats_window").iloc[0]
    since_reset, since_start = w["since_reset_s"], w["since_start_s"]
    # Before PostgreSQL 15 a restart lost the counters; from 15 on they survive a clean restart (not a crash).
    missing = lambda x: x is None or x != x  # noqa: E731 - None or NaN
    candidates = [x for x in (since_reset, since_start if int(w["server_version_num"]) < 150000 or missing(since_reset)
                              else None) if not missing(x)]
    df.attrs["stats_age_s"] = min(candidates) if candidates else None
    return mark(with_definitions(ctx, df, candidates_for_drop(df, **_configured(ctx))), ctx)


def _configured(ctx: CheckContext) -> dict:
    """indexes.unused's max_scans and min_size_bytes as the config file and target set them (a runbook's own
    override is only known to the judge: its extra candidates then go without a definition)."""
    layers = [ctx.config.thresholds_for("indexes.unused", ctx.target)] if getattr(ctx, "config", None) else []
    t = UNUSED.resolve_thresholds(*layers)
    return {"max_scans": t["max_scans"], "min_size_bytes": t["min_size_bytes"]}


def candidates_for_drop(df, *, max_scans: float, min_size_bytes: float):
    """Rows scanned at most max_scans times, of min_size_bytes or more, that enforce nothing and are valid."""
    return df[(df["idx_scan"] <= max_scans) & (df["size_bytes"] >= min_size_bytes) & ~df["is_unique"]
              & ~df["backs_constraint"] & df["is_valid"]]


def with_definitions(ctx: CheckContext, df, rows):
    """df with a `definition` column: pg_get_indexdef() for `rows` only (deparsing every index is most of the
    query's cost on a large catalog), NULL for the others."""
    oids = [int(o) for o in rows["index_oid"]] if len(rows) else []
    defs = ctx.db.fetch("indexes/definitions", oids=oids) if oids else None
    by_oid = dict(zip(defs["index_oid"], defs["definition"])) if defs is not None else {}
    attrs = df.attrs
    df = df.assign(definition=[by_oid.get(int(o)) for o in df["index_oid"]])
    df.attrs = attrs
    return df


def judge_unused(df, *, max_scans: float = 20, min_size_bytes: float = 1 * MB,
                 min_stats_age_days: float = 7) -> list[Finding]:
    age = df.attrs.get("stats_age_s")
    young = age is not None and age < min_stats_age_days * 86400
    cand = candidates_for_drop(df, max_scans=max_scans, min_size_bytes=min_size_bytes)
    out = []
    for r in cand.itertuples():
        name = f"{r.schema_name}.{r.index_name}"
        definition = r.definition if isinstance(getattr(r, "definition", None), str) else \
            f"Its definition: SELECT pg_get_indexdef('{name}'::regclass);"
        fk = getattr(r, "needed_by_fk", None)
        if isinstance(fk, str) and fk:
            out.append(Finding("indexes.unused", Severity.INFO,
                               f"{name}: unused by reads but needed by the foreign key {fk}",
                               detail=f"{r.idx_scan:,.0f} scans, {_mb(r.size_bytes)} on {r.schema_name}.{r.table_name}. "
                                      f"It is the only index covering {fk}: without it each update or delete of a "
                                      f"referenced row scans the whole table to check references. {definition}",
                               objects=[name], value=r.size_bytes, threshold=max_scans,
                               remediation="Keep it (indexes.unindexed_fk would report the foreign key at once)."))
            continue
        if of(df) is not None:
            out.append(_unused_on_standby(r, of(df), definition, max_scans))
            continue
        unread = r.table_reads == 0
        soft = young or unread
        why = (f"statistics only {age / 86400:,.1f} days old (reset or restart): every index looks unused after "
               "a stats reset or a restore" if young else
               "its table has not been read at all since statistics began (a restore or a reset?)" if unread else
               f"statistics {age / 86400:,.0f} days old" if age else "statistics age unknown")
        out.append(Finding("indexes.unused", Severity.INFO if soft else Severity.WARNING,
                           f"{name}: {r.idx_scan:,.0f} scans, {_mb(r.size_bytes)}",
                           detail=f"On {r.schema_name}.{r.table_name} ({r.table_writes:,.0f} row writes it must "
                                  f"maintain); {why}. {definition}",
                           objects=[name], value=r.size_bytes, threshold=max_scans,
                           remediation=("Wait for a full business cycle of statistics before deciding. " if soft else "")
                           + f"Check replicas too (scans there do not count here), then: DROP INDEX CONCURRENTLY {name};"))
    if not out:
        out.append(Finding("indexes.unused", Severity.OK,
                           f"no index of {_mb(min_size_bytes)}+ with {max_scans:g} scans or fewer",
                           detail=f"{len(df)} indexes checked.", threshold=max_scans))
    return out


def _unused_on_standby(r, standby: Standby, definition: str, max_scans: float) -> Finding:
    """A standby counts only the scans it served: whether the index is used is for the primary to say."""
    name = f"{r.schema_name}.{r.index_name}"
    return Finding("indexes.unused", Severity.INFO,
                   f"{name}: {r.idx_scan:,.0f} scans on this standby, {_mb(r.size_bytes)}",
                   detail=f"On {r.schema_name}.{r.table_name}. These usage counters are this standby's own: the "
                          f"primary's scans (and other standbys') are not counted here, so a low count here does not "
                          f"mean the index is unused. {definition}",
                   objects=[name], value=r.size_bytes, threshold=max_scans,
                   remediation=f"Decide on {standby.primary}: run capacity-planning against it and add the scans "
                               f"every standby serves (this one: {r.idx_scan:,.0f}) before removing anything.")


UNUSED = register(Check(
    id="indexes.unused",
    description="Indexes scanned at most a few times since statistics began, with their size; softened to info "
                "when statistics are younger than a week (a reset or restore makes every index look unused); the "
                "only index covering a foreign key is said to be needed, never to be dropped.",
    data=unused, judge=judge_unused,
    thresholds=(Threshold("max_scans", 20, "index scans", "ruby pg-extras diagnose: unused index < 20 scans"),
                Threshold("min_size_bytes", 1 * MB, "bytes", "ruby pg-extras diagnose: >= 1 MB"),
                Threshold("min_stats_age_days", 7, "days of statistics",
                          "opsbook default: a week covers weekly jobs (pghero #104/#140: noise after restore)")),
    queries=("indexes/usage", "indexes/stats_window", "indexes/definitions", STANDBY), runbooks=("capacity-planning",)))


# ---------------------------------------------------------------- indexes.duplicate
def duplicates(ctx: CheckContext) -> pd.DataFrame:
    return mark(ctx.db.fetch("indexes/duplicates"), ctx)


def judge_duplicates(df, *, min_size_bytes: float = 0) -> list[Finding]:
    out = []
    for r in df[df["size_bytes"] >= min_size_bytes].drop_duplicates(subset=["schema_name", "index_name"]).itertuples():
        name = f"{r.schema_name}.{r.index_name}"
        how = ("is identical to" if r.reason == "identical" else "has key columns that lead")
        out.append(Finding("indexes.duplicate", Severity.WARNING, f"{name} ({_mb(r.size_bytes)}) {how} "
                                                                   f"{r.schema_name}.{r.covered_by}",
                           detail=f"{r.definition}  is covered by  {r.covered_by_definition}. Every write maintains "
                                  "both; queries can use the other one."
                                  + (f" Scans since statistics began: {r.scans:,.0f} here, {r.covered_by_scans:,.0f} on "
                                     f"{r.covered_by} (the one kept)." if hasattr(r, "scans") else ""),
                           objects=[name], value=r.size_bytes,
                           remediation=f"DROP INDEX CONCURRENTLY {name};"))
    if not out:
        out.append(Finding("indexes.duplicate", Severity.OK, "no index made redundant by another"))
    return relay(out, of(df))


DUPLICATE = register(Check(
    id="indexes.duplicate",
    description="Indexes made redundant by another on the same table: identical ones (the more scanned twin is "
                "kept), and btree indexes whose columns lead another's (unique and constraint indexes are kept).",
    data=duplicates, judge=judge_duplicates,
    thresholds=(Threshold("min_size_bytes", 0, "bytes", "splinter 0009 duplicate_index: every duplicate counts"),),
    queries=("indexes/duplicates", STANDBY), runbooks=("capacity-planning",)))


# ---------------------------------------------------------------- indexes.invalid
def invalid(ctx: CheckContext) -> pd.DataFrame:
    return mark(ctx.db.fetch("indexes/invalid"), ctx)


def judge_invalid(df) -> list[Finding]:
    out = [Finding("indexes.invalid", Severity.WARNING, f"{r.schema_name}.{r.index_name} is invalid "
                                                       f"({_mb(r.size_bytes)})",
                   detail=f"Left by a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY: writes still maintain "
                          f"it, queries never use it. {r.definition}",
                   objects=[f"{r.schema_name}.{r.index_name}"], value=r.size_bytes,
                   remediation=f"DROP INDEX CONCURRENTLY {r.schema_name}.{r.index_name};  -- then build it again: "
                               f"{r.definition.replace('CREATE INDEX', 'CREATE INDEX CONCURRENTLY', 1)};")
           for r in df.itertuples()]
    return relay(out, of(df)) or [Finding("indexes.invalid", Severity.OK, "no invalid index")]


INVALID = register(Check(
    id="indexes.invalid",
    description="Invalid indexes left by failed concurrent builds (builds still running are not counted).",
    data=invalid, judge=judge_invalid, queries=("indexes/invalid", STANDBY), runbooks=("capacity-planning",)))


# ---------------------------------------------------------------- indexes.unindexed_fk
def unindexed_fk(ctx: CheckContext) -> pd.DataFrame:
    return mark(ctx.db.fetch("indexes/unindexed_fk"), ctx)


def judge_unindexed_fk(df, *, min_table_bytes: float = 10 * MB, min_parent_writes: float = 1000) -> list[Finding]:
    out = []
    for r in df.itertuples():
        name = f"{r.schema_name}.{r.table_name}"
        heavy = r.table_bytes >= min_table_bytes or r.referenced_updates_deletes >= min_parent_writes
        out.append(Finding("indexes.unindexed_fk", Severity.WARNING if heavy else Severity.INFO,
                           f"{name}.{r.constraint_name}: no index on ({r.columns})",
                           detail=f"Each update or delete on {r.referenced_table} "
                                  f"({r.referenced_updates_deletes:,.0f} so far) scans {name} "
                                  f"({_mb(r.table_bytes)}, {r.rows_est:,.0f} rows) to check references, and joins on "
                                  "the key cannot use an index.",
                           objects=[name], value=r.table_bytes, threshold=min_table_bytes,
                           remediation=f"CREATE INDEX CONCURRENTLY ON {name} ({r.columns});"))
    return relay(out, of(df)) or [Finding("indexes.unindexed_fk", Severity.OK,
                                          "every foreign key has a supporting index")]


UNINDEXED_FK = register(Check(
    id="indexes.unindexed_fk",
    description="Foreign keys without an index whose leading columns are the key's columns (any order), weighted "
                "by the table's size and the referenced table's updates and deletes.",
    data=unindexed_fk, judge=judge_unindexed_fk,
    thresholds=(Threshold("min_table_bytes", 10 * MB, "bytes of the referencing table",
                          "opsbook default: below it a scan is cheap (splinter 0001 reports every one as INFO)"),
                Threshold("min_parent_writes", 1000, "updates+deletes on the referenced table",
                          "opsbook default: each one scans the referencing table")),
    queries=("indexes/unindexed_fk", STANDBY), runbooks=("capacity-planning",)))
