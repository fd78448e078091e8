"""Storage: database size against the plan's limits, its growth forecast, and Supabase Storage buckets."""
from __future__ import annotations

from ..core.findings import Finding, Severity, grade
from ..history import HOW_TO_START
from ..history import capacity as cap
from ..database import supabase
from .registry import Check, CheckContext, Threshold, register
from .standby import QUERY as STANDBY, mark, of, relay

GROWTH_METRIC = "database_size_bytes"


def _gb(n: float) -> str:
    return f"{n / 1024 ** 3:,.2f} GB" if n >= 1024 ** 3 else f"{n / 1024 ** 2:,.1f} MB"


# ---------------------------------------------------------------- storage.database_size
def database_size(ctx: CheckContext) -> pd.DataFrame:
    """One row per limit line of the plan: the database's size now against it."""
    size = float(ctx.db.fetch("storage/database_size")["size_bytes"].iloc[0])
    lim = cap.limits_for(ctx)
    rows = [{"limit": x.name, "limit_bytes": float(x.value), "size_bytes": size, "pct_used": 100 * size / x.value,
             "source": x.source, "note": x.note} for x in lim.size]
    import pandas as pd  # noqa: PLC0415 - keep `opsbook checks` fast

    df = pd.DataFrame(rows, columns=["limit", "limit_bytes", "size_bytes", "pct_used", "source", "note"])
    df.attrs.update(size_bytes=size, plan=lim.plan, spend_cap=lim.spend_cap, price_list=lim.price_list)
    return mark(df, ctx)


def judge_database_size(df, *, warning: float = 80, critical: float = 95) -> list[Finding]:
    size = df.attrs["size_bytes"]
    if df.empty:
        return [Finding("storage.database_size", Severity.INFO, f"database is {_gb(size)}; no plan limit known",
                        detail="Set plan = \"free\" | \"pro\" | \"team\" for the target in opsbook.toml (or the "
                               "runbook's plan parameter) to compare against the plan's limit.", value=size)]
    worst = df.sort_values("pct_used", ascending=False).iloc[0]
    pct = float(worst["pct_used"])
    sev = grade(pct, warning, critical)
    lines = "; ".join(f"{r.limit}: {_gb(r.limit_bytes)} ({r.pct_used:.1f}% used)" for r in df.itertuples())
    out = [Finding("storage.database_size", sev, f"database is {_gb(size)}, {pct:.1f}% of {worst['limit']}",
                   detail=f"{lines}. Limits from {df.attrs['price_list']}; {worst['source']}.",
                   value=round(pct, 1), threshold=critical if sev is Severity.CRITICAL else warning,
                   remediation="" if sev is Severity.OK else
                   "Archive or delete old rows (source guides: archive data older than 90 days), drop unused "
                   "indexes, VACUUM FULL / pg_repack bloated tables, or move to a larger plan / disk before the "
                   "database goes read-only.")]
    return relay(out, of(df))  # on a standby: the data and the disk to free are the primary's


DATABASE_SIZE = register(Check(
    id="storage.database_size",
    description="Database size (pg_database_size) against the plan's limits: Free 500 MB; paid plans' 8 GB "
                "included disk, its auto-scaling at 90% and read-only point at 95% "
                "(docs/sources/supabase-pricing-2026.md).",
    data=database_size, judge=judge_database_size,
    thresholds=(Threshold("warning", 80, "% of the plan limit", "source guides 000/002: storage > 80% of limit"),
                Threshold("critical", 95, "% of the plan limit",
                          "Supabase disk-size docs (S6, 2026-04-01): read-only at 95% full")),
    queries=("storage/database_size", STANDBY), runbooks=("capacity-planning",)))


# ---------------------------------------------------------------- storage.growth_forecast
def growth_forecast(ctx: CheckContext) -> pd.DataFrame:
    """Days until the trigger (80%) and 100% of each size limit, from the history's growth fit."""
    series = cap.history_series(ctx, GROWTH_METRIC)
    lim = cap.limits_for(ctx)
    fc = cap.fit(series)
    current = float(series["value"].iloc[-1]) if len(series) else float("nan")
    df = cap.days_table(fc, current, lim.size)
    df.attrs.update(forecast=fc, series=series, size_bytes=current, simulated=cap.simulated(ctx),
                    target=ctx.target.name)
    return mark(df, ctx)


def judge_growth_forecast(df, *, warning_days: float = 90, critical_days: float = 30) -> list[Finding]:
    fc = df.attrs["forecast"]
    target = df.attrs.get("target", "TARGET")
    if not fc.ok:
        return [Finding("storage.growth_forecast", Severity.INFO, "no growth history yet: no forecast",
                        detail=f"{fc.describe()}. To start collecting, {HOW_TO_START.format(target=target)}.",
                        remediation=HOW_TO_START.format(target=target))]
    sim = " (history replayed with a simulated clock)" if df.attrs.get("simulated") else ""
    growth = f"growing {_gb(abs(fc.growth_per_day))}/day" if fc.growth_per_day > 0 else "not growing"
    out = []
    for r in df.itertuples():
        full, trig = r.days_to_full, r.days_to_trigger
        sev = Severity.OK
        if full is not None and full <= critical_days:
            sev = Severity.CRITICAL
        elif trig is not None and trig <= warning_days:
            sev = Severity.WARNING
        band = "" if full is None else (f" (90% band: {r.days_to_full_earliest:,.0f} to "
                                        f"{'beyond ten years' if r.days_to_full_latest is None else f'{r.days_to_full_latest:,.0f} days'})")
        out.append(Finding(
            "storage.growth_forecast", sev,
            f"{r.limit}: 80% {cap.days_text(trig)}, 100% {cap.days_text(full)}",
            detail=f"Database {growth}; {fc.describe()}{sim}. 100% of {_gb(r.limit_value)}{band}. {r.source}.",
            value=None if full is None else round(full, 1),
            threshold=critical_days if sev is Severity.CRITICAL else warning_days,
            remediation="" if sev is Severity.OK else
            "Plan the upgrade or the clean-up now: archive old rows, drop unused indexes, remove bloat; on Pro "
            "with the spend cap on, the disk will not grow past 8 GB."))
    if not out:
        out.append(Finding("storage.growth_forecast", Severity.INFO, f"database {growth}; no plan limit to forecast "
                                                                        "against", detail=fc.describe()))
    return relay(out, of(df))


GROWTH_FORECAST = register(Check(
    id="storage.growth_forecast",
    description="Database growth per day from the snapshot history, and days until 80% and 100% of each plan "
                "limit, with a 90% band (opsbook.history.forecast: robust line, or quadratic/exponential when growth "
                "accelerates).",
    data=growth_forecast, judge=judge_growth_forecast,
    thresholds=(Threshold("warning_days", 90, "days until 80% of a limit",
                          "opsbook default: a quarter ahead, so a monthly capacity review (guides 000/002) sees it "
                          "three times before the scaling trigger"),
                Threshold("critical_days", 30, "days until 100% of a limit",
                          "opsbook default: less than one monthly review cycle left")),
    queries=(STANDBY,), runbooks=("capacity-planning",)))


# ---------------------------------------------------------------- storage.objects
def storage_objects(ctx: CheckContext) -> pd.DataFrame:
    """Objects and bytes per bucket, with growth per day from history when there is some."""
    df = supabase.fetch(ctx.db, "storage/buckets", "storage")
    lim = cap.limits_for(ctx)
    series = cap.history_series(ctx, "storage_objects_bytes")
    fc = cap.fit(series)
    total = float(df["size_bytes"].sum())
    df.attrs.update(total_bytes=total, quota=lim.storage, forecast=fc,
                    days=cap.days_table(fc, total, [lim.storage] if lim.storage else []))
    return df


def judge_storage_objects(df, *, warning: float = 80, critical: float = 100) -> list[Finding]:
    total, quota, fc = df.attrs["total_bytes"], df.attrs["quota"], df.attrs["forecast"]
    buckets = ", ".join(f"{r.bucket_id}: {int(r.objects):,} objects, {_gb(r.size_bytes)}" for r in df.head(5).itertuples())
    growth = (f" Growing {_gb(fc.growth_per_day)}/day ({fc.describe()})." if fc.ok and fc.growth_per_day > 0 else "")
    if quota is None:
        return [Finding("storage.objects", Severity.INFO, f"Storage holds {_gb(total)} in {len(df)} bucket(s)",
                        detail=f"{buckets}.{growth} No plan set: no quota to compare against.", value=total)]
    pct = 100 * total / quota.value
    sev = grade(pct, warning, critical)
    days = df.attrs["days"]
    when = ""
    if len(days):
        when = f" 80% of the quota {cap.days_text(days['days_to_trigger'].iloc[0])}, 100% {cap.days_text(days['days_to_full'].iloc[0])}."
    return [Finding("storage.objects", sev, f"Storage holds {_gb(total)}, {pct:.1f}% of the {quota.name} quota "
                                            f"({_gb(quota.value)})",
                    detail=f"{buckets}.{growth}{when} {quota.source}.", value=round(pct, 1),
                    threshold=critical if sev is Severity.CRITICAL else warning,
                    remediation="" if sev is Severity.OK else
                    "Delete or expire old objects (lifecycle rules), compress images and PDFs (source guides 002/004), "
                    "or budget the overage (0.021 USD/GB-month on paid plans).")]


OBJECTS = register(Check(
    id="storage.objects",
    description="Supabase Storage: objects and bytes per bucket (storage.objects metadata size) and their growth, "
                "against the plan's file storage quota (Free 1 GB, Pro/Team 100 GB).",
    data=storage_objects, judge=judge_storage_objects,
    thresholds=(Threshold("warning", 80, "% of the storage quota", "source guide 000: scaling triggers at 80%"),
                Threshold("critical", 100, "% of the storage quota",
                          "docs/sources/supabase-pricing-2026.md: past the quota, overage or restriction")),
    queries=("storage/buckets",), runbooks=("capacity-planning",)))
