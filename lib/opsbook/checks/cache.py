"""Cache: how often tables and indexes are read from shared buffers rather than from disk."""
from __future__ import annotations

from ..core.findings import Finding, Severity, grade
from .registry import Check, CheckContext, Threshold, register


def hit_ratio(ctx: CheckContext):
    """Blocks hit and read for the tables and for the indexes of this database, with pct_hit."""
    df = ctx.db.fetch("cache/hit_ratio")
    total = df["blks_hit"] + df["blks_read"]
    return df.assign(pct_hit=(100.0 * df["blks_hit"] / total.where(total > 0)).astype("float64"))


def overall_pct(df) -> float | None:
    """Tables and indexes together, for the run's metrics."""
    hit, total = df["blks_hit"].sum(), df["blks_hit"].sum() + df["blks_read"].sum()
    return round(100.0 * hit / total, 2) if total else None


def judge_hit_ratio(df, *, warning: float = 99, critical: float = 94, min_blocks: float = 10_000) -> list[Finding]:
    out = []
    for row in df.itertuples():
        total = row.blks_hit + row.blks_read
        if total < min_blocks:
            out.append(Finding("cache.hit_ratio", Severity.OK,
                               f"{row.relation_kind}: too little traffic to judge ({total:,} blocks since reset)",
                               threshold=min_blocks))
            continue
        sev = grade(row.pct_hit, warning, critical, higher_is_worse=False)
        title = f"{row.relation_kind}: {row.pct_hit:.2f}% of block reads served from the buffer cache"
        out.append(Finding(
            "cache.hit_ratio", sev, title,
            detail=f"{row.blks_read:,} blocks read from disk, {row.blks_hit:,} from cache since statistics reset.",
            value=round(row.pct_hit, 2), threshold=critical if sev is Severity.CRITICAL else warning,
            remediation="" if sev is Severity.OK else
            "Index or archive what the top statements read from disk (queries.slow, shared_blks_read). The "
            "working set no longer fits in memory; if the data really is hot, a larger compute size brings more "
            "shared_buffers."))
    return out


HIT_RATIO = register(Check(
    id="cache.hit_ratio",
    description="Buffer cache hit ratio of this database's tables and of its indexes since statistics reset.",
    data=hit_ratio,
    judge=judge_hit_ratio,
    thresholds=(
        Threshold("warning", 99, "% hits (below)", "pghero and Supabase docs: a healthy app serves >= 99% from cache"),
        Threshold("critical", 94, "% hits (below)", "supabase/cli inspect rules.toml: cache hit rate < 94%"),
        Threshold("min_blocks", 10_000, "blocks read + hit", "opsbook default: too few reads to judge a ratio"),
    ),
    queries=("cache/hit_ratio",),
    runbooks=("incident-triage",),
))
