"""Wraparound: how close each database's transaction IDs are to the 2^31 limit where writes stop."""
from __future__ import annotations

from ..core.findings import Finding, Severity, grade
from .registry import Check, CheckContext, Threshold, register
from .standby import QUERY as STANDBY, mark, of, relay


def xid_age(ctx: CheckContext):
    """Per database: XID and multixact age and % of the way to wraparound; this database's oldest tables in attrs."""
    df = ctx.db.fetch("wraparound/xid_age")
    df.attrs["oldest_tables"] = ctx.db.fetch("wraparound/oldest_tables").to_dict("records")
    return mark(df, ctx)


def judge_xid_age(df, *, warning: float = 50, critical: float = 75) -> list[Finding]:
    out = []
    tables = ", ".join(f"{t['table_name']} ({t['xid_age']:,})" for t in df.attrs.get("oldest_tables", [])[:5])
    for row in df.itertuples():
        pct = max(row.pct_xid_used, row.pct_mxid_used)
        sev = grade(pct, warning, critical)
        if sev is Severity.OK:
            continue
        which = "transaction ID" if row.pct_xid_used >= row.pct_mxid_used else "multixact ID"
        out.append(Finding(
            "wraparound.xid_age", sev,
            f"database {row.datname}: {which} age {max(row.xid_age, row.mxid_age):,} is {pct:.1f}% of the way "
            "to wraparound",
            detail=f"XID age {row.xid_age:,}, multixact age {row.mxid_age:,}; anti-wraparound autovacuum starts at "
                   f"{row.autovacuum_freeze_max_age:,}. At the limit PostgreSQL stops assigning transaction IDs: "
                   f"no more writes. Oldest tables here: {tables or '-'}.",
            objects=[row.datname], value=int(row.xid_age), threshold=critical if sev is Severity.CRITICAL else warning,
            remediation=f"VACUUM (FREEZE, VERBOSE) the oldest tables of database {row.datname} first. Before "
                        "that, end what holds the xmin horizon back (activity.idle_in_transaction, "
                        "replication.slots, SELECT * FROM pg_prepared_xacts), or vacuum cannot advance it."))
    if not out:
        top = df.iloc[0] if len(df) else None
        title = ("no database past {:.0f}% of XID wraparound (oldest: {} at {:,} XIDs, {:.2f}%)".format(
            warning, top["datname"], int(top["xid_age"]), top["pct_xid_used"]) if top is not None else
            "no database readable")
        out.append(Finding("wraparound.xid_age", Severity.OK, title,
                           value=int(top["xid_age"]) if top is not None else None, threshold=warning))
    return relay(out, of(df))


XID_AGE = register(Check(
    id="wraparound.xid_age",
    description="Transaction ID and multixact age of each database against the 2^31 wraparound limit, with this "
                "database's oldest tables.",
    data=xid_age,
    judge=judge_xid_age,
    thresholds=(
        Threshold("warning", 50, "% of the 2^31 XID space", "postgres-checkup F002: P1 when over 50% of XID "
                  "capacity is used"),
        Threshold("critical", 75, "% of the 2^31 XID space", "opsbook default: ~500 million XIDs left, days at "
                  "a busy write rate"),
    ),
    queries=("wraparound/xid_age", "wraparound/oldest_tables", STANDBY),
    runbooks=("incident-triage",),
))
