"""Sequences: how close each sequence, and the integer column it feeds, is to its limit."""
from __future__ import annotations

from ..core.findings import Finding, Severity
from ..history import capacity as cap
from .registry import Check, CheckContext, Threshold, register
from .standby import QUERY as STANDBY, mark, of, relay
from .visibility import DATA_GRANT, partial


def sequences(ctx: CheckContext) -> pd.DataFrame:
    """Every sequence, judged against the smaller of its max_value and its column's type; days left from history."""
    df = ctx.db.fetch("sequences/usage")
    df["days_left"] = None
    store = cap.store_for(ctx)
    if store is not None and (df["pct_used"] >= 1).any():
        series = store.labelled(ctx.target.name, "sequence_pct_used")
        for i, r in df[df["pct_used"] >= 1].iterrows():
            s = series[series["label"] == f"{r.schema_name}.{r.sequence_name}"]
            if len(s) >= 3:
                df.at[i, "days_left"] = cap.fit(s).days_until(100.0).days
    return mark(df, ctx)


def _pct(p: float) -> str:
    return f"{p:.2f}%" if p >= 99 else f"{p:.1f}%"


def judge_sequences(df, *, warning: float = 75, critical: float = 90) -> list[Finding]:
    out = []
    for r in df.itertuples():
        if r.pct_used is None or r.pct_used != r.pct_used or r.pct_used < warning:
            continue
        sev = Severity.CRITICAL if r.pct_used >= critical else Severity.WARNING
        seq = f"{r.schema_name}.{r.sequence_name}"
        col = f"{r.table_schema}.{r.table_name}.{r.column_name}" if r.table_name else None
        narrower = col and r.column_max < r.sequence_max
        limit = (f"column {col} is {r.column_type} (max {r.column_max:,}) though the sequence allows "
                 f"{r.sequence_max:,}" if narrower else f"sequence max {r.usable_max:,}")
        left = "" if r.days_left is None or r.days_left != r.days_left else f" At the current rate, exhausted in about {r.days_left:,.0f} days."
        fed = getattr(r, "fed_count", 1) or 1
        if fed > 1:
            left = f" It feeds {fed} columns, judged by the one that fails first: {r.fed_columns}.{left}"
        fix = (f"ALTER TABLE {r.table_schema}.{r.table_name} ALTER COLUMN {r.column_name} TYPE bigint;  -- rewrites "
               f"the table under an exclusive lock: plan it (or add a bigint column and backfill)"
               if narrower else f"ALTER SEQUENCE {seq} AS bigint MAXVALUE 9223372036854775807;")
        out.append(Finding("sequences.exhaustion", sev, f"{seq} at {_pct(r.pct_used)} of its limit "
                                                        f"({r.last_value:,.0f} of {r.usable_max:,})",
                           detail=f"{limit}.{left}", objects=[x for x in (seq, col) if x], value=r.pct_used,
                           threshold=critical if sev is Severity.CRITICAL else warning, remediation=fix))
    hidden = df["hidden"].fillna(False).astype(bool) if "hidden" in df.columns else df["pct_used"].isna() & False
    seen = df[~hidden]
    if not out:
        top = seen["pct_used"].max() if len(seen) else 0
        top = 0 if top != top else top
        out.append(Finding("sequences.exhaustion", Severity.OK,
                           f"every sequence {'this role can read ' if hidden.any() else ''}below {warning:g}% of its "
                           f"limit (highest {top or 0:.2f}%)",
                           detail=f"{len(seen)} sequences, judged against every column they feed.", threshold=warning))
    names = ", ".join(f"{r.schema_name}.{r.sequence_name}" for r in df[hidden].head(10).itertuples())
    return relay(out, of(df)) + partial("sequences.exhaustion", int(hidden.sum()),
                         "sequences whose value this role may not read (no SELECT or USAGE on them)",
                         f"Their last value reads as NULL to this role, so how close they are to their limit is "
                         f"unknown: {names}{', ...' if hidden.sum() > 10 else ''}.", DATA_GRANT)


EXHAUSTION = register(Check(
    id="sequences.exhaustion",
    description="Sequences and the integer keys they feed near their limit, judged against every column they "
                "feed (an int4 key fails at 2,147,483,647 whatever its sequence allows, also when the sequence's "
                "owner is a bigint); sequences this role may not read are said.",
    data=sequences, judge=judge_sequences,
    thresholds=(Threshold("warning", 75, "% of the limit", "opsbook default: time left to migrate a busy key"),
                Threshold("critical", 90, "% of the limit", "pghero sequence_danger: 90%")),
    queries=("sequences/usage", STANDBY), runbooks=("capacity-planning",)))
