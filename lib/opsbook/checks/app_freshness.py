"""app.freshness: configured tables whose newest row is older than allowed (guide 000: data freshness < 4 h)."""
from __future__ import annotations

from ..database import sql as sqlfiles
from ..core.findings import Finding, Severity
from .registry import Check, CheckContext, Threshold, register

CONFIG_HOW = ('add rules to opsbook.toml: [targets.prod.freshness."public.vehicle_listings"] column = "scraped_at" '
              "max_age_hours = 4 (or pass the runbook parameter freshness)")
COLUMNS = ["table_name", "column_name", "max_age_hours", "newest", "age_h", "status"]


def rules(ctx: CheckContext) -> dict[str, dict]:
    """The target's freshness rules from opsbook.toml, overridden by the runbook's `freshness` parameter."""
    return {**(getattr(ctx.target, "freshness", None) or {}), **(ctx.params.get("freshness") or {})}


def newest_rows(ctx: CheckContext, max_scan_rows: float = 1_000_000):
    """One row per rule: the newest value of its column and its age, or why it could not be read."""
    import pandas as pd  # noqa: PLC0415
    from sqlalchemy.exc import DBAPIError  # noqa: PLC0415

    out = []
    for table, rule in sorted(rules(ctx).items()):
        rule = rule if isinstance(rule, dict) else {}
        column = str(rule.get("column", ""))
        row = {"table_name": table, "column_name": column, "max_age_hours": rule.get("max_age_hours"),
               "newest": None, "age_h": None, "status": "ok"}
        out.append(row)
        if not column:
            row["status"] = "rule has no column"
            continue
        schema, _, name = table.rpartition(".")
        where = ctx.db.fetch("app/freshness_target", schema_name=schema or "public", table_name=name,
                             column_name=column)
        if where.empty:
            row["status"] = "table not found"
            continue
        t = where.iloc[0]
        if pd.isna(t["column_ident"]):
            row["status"] = "column not found"
        elif isinstance(t["unsafe"], str):
            row["status"] = "not read: " + t["unsafe"]
        elif not t["indexed"] and t["estimated_rows"] > max_scan_rows:
            row["status"] = f"not read: no index on {column} and ~{t['estimated_rows']:,.0f} rows to scan"
        else:
            text = (sqlfiles.load("app/newest_row", ctx.db.server_version_num)
                    .replace("{{table}}", t["table_ident"]).replace("{{column}}", t["column_ident"]))
            try:
                got = ctx.db.query(text, _name="app/newest_row").iloc[0]
            except DBAPIError as e:  # no privilege on that table, a column that is not a time, a timeout
                row["status"] = "not read: " + " ".join(str(e.orig).split())[:160]
                continue
            row["newest"], row["age_h"] = got["newest"], None if pd.isna(got["age_s"]) else got["age_s"] / 3600
            if pd.isna(got["newest"]):
                row["status"] = "no rows"
    return pd.DataFrame(out, columns=COLUMNS)


def judge_freshness(df, *, default_max_age_hours: float = 4, critical_factor: float = 3) -> list[Finding]:
    if df.empty:
        return [Finding("app.freshness", Severity.INFO, "no freshness rules configured for this target",
                        remediation=CONFIG_HOW)]
    out = []
    for row in df.itertuples():
        limit = float(row.max_age_hours if row.max_age_hours is not None and row.max_age_hours == row.max_age_hours
                      else default_max_age_hours)
        obj = [f"{row.table_name}.{row.column_name}"]
        if row.status == "no rows":
            out.append(Finding("app.freshness", Severity.WARNING, f"{row.table_name} has no rows with a "
                               f"{row.column_name}", objects=obj, threshold=limit,
                               remediation="the job that fills it has never run or lost its data: check it first"))
        elif row.status != "ok":
            out.append(Finding("app.freshness", Severity.INFO, f"{row.table_name}: {row.status}", objects=obj,
                               skipped=row.status, remediation=f"fix the rule or the privilege; {CONFIG_HOW}"))
        else:
            age = float(row.age_h)
            sev = (Severity.CRITICAL if age > limit * critical_factor else Severity.WARNING if age > limit
                   else Severity.OK)
            out.append(Finding(
                "app.freshness", sev, f"{row.table_name}: newest {row.column_name} is {age:,.1f} h old "
                f"(allowed {limit:g} h)", detail=f"newest value {row.newest}", objects=obj, value=round(age, 2),
                threshold=limit * critical_factor if sev is Severity.CRITICAL else limit,
                remediation="" if sev is Severity.OK else
                f"Check the job that writes {row.table_name}: its schedule (cron.job_run_details), its failures "
                "(e.g. scraping_sessions with status 'failed'), its logs and its source. It has stopped or is "
                "failing."))
    return out


FRESHNESS = register(Check(
    id="app.freshness",
    description="For each table in the target's freshness rules (opsbook.toml or the runbook's `freshness` "
                "parameter): how old its newest row is against the allowed age.",
    data=newest_rows,
    judge=judge_freshness,
    thresholds=(
        Threshold("default_max_age_hours", 4, "hours", "source guide 000: vehicle data freshness < 4 hours since "
                  "last update"),
        Threshold("critical_factor", 3, "x the allowed age", "opsbook default: three missed windows is an outage "
                  "of the pipeline"),
    ),
    queries=("app/freshness_target", "app/newest_row"),
    runbooks=("incident-triage",),
))
