"""What the capacity checks read besides the live database: the history window, the limits, forecasts per limit."""
from __future__ import annotations

import time
from typing import Any

from ..config import plan_limits as limits

DEFAULT_WINDOW_DAYS = 90
DEFAULT_HORIZON_DAYS = 90
PLOT_POINTS = 400  # snapshots per plotted table series: what a chart can show; the whole window still counts
SCALING_TRIGGER_PCT = 80  # source guides 000 and 002: scale / upgrade when a resource passes 80% of its limit


def params(ctx) -> dict[str, Any]:
    p = getattr(ctx, "params", None) or {}
    return {"window_days": float(p.get("window_days") or DEFAULT_WINDOW_DAYS),
            "horizon_days": float(p.get("horizon_days") or DEFAULT_HORIZON_DAYS),
            "plan": p.get("plan"), "compute": p.get("compute")}


def limits_for(ctx) -> limits.Limits:
    p = params(ctx)
    return limits.for_target(ctx.target, p["plan"], p["compute"])


def store_for(ctx):
    """The history store of the run's configuration, or None when there is none or it cannot be opened."""
    if getattr(ctx, "config", None) is None:
        return None
    cached = getattr(ctx, "_opsbook_store", None)
    if cached is not None:
        return cached
    from . import open_store  # noqa: PLC0415

    try:
        store = open_store(ctx.config, create=False)  # a report never creates an empty store
    except Exception:  # noqa: BLE001 - no history is a finding ("start collecting"), never a crash
        return None
    if store is None:
        return None
    try:
        ctx._opsbook_store = store
    except AttributeError:
        pass
    return store


def history_series(ctx, metric: str, label: str = "") -> pd.DataFrame:
    """The metric over the window (DataFrame[ts, value]); empty without history."""
    import pandas as pd  # noqa: PLC0415

    store = store_for(ctx)
    if store is None:
        return pd.DataFrame(columns=["ts", "value"])
    start = time.time() - params(ctx)["window_days"] * 86400
    return store.series(ctx.target.name, metric, start=_window_start(store, ctx.target.name, start), label=label)


def _window_start(store, target: str, start: float) -> float:
    """The window ends at the newest snapshot, not at the wall clock (a replayed or paused history still reads)."""
    snaps = store.snapshots(target)
    if snaps.empty:
        return start
    newest = float(snaps["epoch"].max())
    return min(start, newest - (time.time() - start))


def simulated(ctx) -> bool:
    store = store_for(ctx)
    if store is None:
        return False
    return bool(store.snapshots(ctx.target.name)["simulated"].any())


def fit(series: pd.DataFrame, kind: str = "gauge") -> forecast.Forecast:
    from . import forecast  # noqa: PLC0415

    return forecast.fit(series["ts"], series["value"], kind=kind)


def days_table(fc: forecast.Forecast, current: float, lines: list[limits.Limit],
               trigger_pct: float = SCALING_TRIGGER_PCT) -> pd.DataFrame:
    """One row per limit: its value, % used now, days until the trigger (80%) and until 100%, with the band."""
    import pandas as pd  # noqa: PLC0415

    rows = []
    for line in lines:
        if not line or not line.value:
            continue
        to_trigger = fc.days_until(line.value * trigger_pct / 100)
        to_full = fc.days_until(line.value)
        rows.append({"limit": line.name, "key": line.slug, "limit_value": float(line.value), "unit": line.unit,
                     "pct_used": 100.0 * current / line.value,
                     "days_to_trigger": to_trigger.days, "days_to_full": to_full.days,
                     "days_to_full_earliest": to_full.earliest, "days_to_full_latest": to_full.latest,
                     "source": line.source})
    return pd.DataFrame(rows, columns=["limit", "key", "limit_value", "unit", "pct_used", "days_to_trigger", "days_to_full",
                                       "days_to_full_earliest", "days_to_full_latest", "source"])


def days_text(days: float | None) -> str:
    if days is None:
        return "not within ten years at the current trend"
    if days == 0:
        return "already reached"
    return f"in about {days:,.0f} days"


def history_status(ctx) -> str:
    """One sentence for the report: how much history there is, and whether its clock was simulated."""
    from . import HOW_TO_START  # noqa: PLC0415

    store = store_for(ctx)
    snaps = store.snapshots(ctx.target.name) if store is not None else None
    if snaps is None or len(snaps) < 2:
        snaps = [] if snaps is None else snaps
        return (f"No history for target '{ctx.target.name}' yet ({len(snaps)} snapshot(s)): this report shows the "
                f"current state only. To start collecting, {HOW_TO_START.format(target=ctx.target.name)}.")
    span = (snaps["ts"].iloc[-1] - snaps["ts"].iloc[0]).total_seconds() / 86400
    sim = int(snaps["simulated"].sum())
    text = (f"{len(snaps)} snapshots from {snaps['ts'].iloc[0]:%Y-%m-%d} to {snaps['ts'].iloc[-1]:%Y-%m-%d} "
            f"({span:,.0f} days).")
    if sim:
        text += (f" {sim} of them were replayed by `opsbook demo` with a simulated clock: the rows and the "
                 "measurements are real, the dates are not (60 days of growth take seconds).")
    return text


def metrics(size_df, forecast_df, headroom_df=None, bloat_df=None, unused_df=None) -> dict[str, Any]:
    """The numbers a capacity report records for trends: size, growth per day, days until each limit."""
    out: dict[str, Any] = {}
    if size_df is not None:
        out["database_size_bytes"] = size_df.attrs.get("size_bytes")
    if forecast_df is not None:
        fc = forecast_df.attrs.get("forecast")
        if fc is not None and fc.ok:
            out["database_growth_per_day_bytes"] = round(fc.growth_per_day, 1)
            out["forecast_model"] = fc.model
        if len(forecast_df) and fc is not None and fc.ok:
            tight = forecast_df.sort_values("limit_value").iloc[0]
            out["days_until_disk_full"] = _round(tight["days_to_full"])
            out["days_until_scaling_trigger"] = _round(tight["days_to_trigger"])
        for r in forecast_df.itertuples():
            out[f"days_until_80pct_{r.key}"] = _round(r.days_to_trigger)
            out[f"days_until_full_{r.key}"] = _round(r.days_to_full)
    if headroom_df is not None and len(headroom_df):
        out["connections_peak"] = headroom_df.attrs.get("peak")
    if bloat_df is not None and len(bloat_df):
        out["bloat_estimated_bytes"] = float(bloat_df["bloat_bytes"].sum())
    if unused_df is not None and len(unused_df):
        out["unused_index_bytes"] = float(never_scanned(unused_df)["size_bytes"].sum())
    return out


def _round(days) -> float | None:
    return None if days is None or days != days else round(float(days), 1)


def never_scanned(usage: pd.DataFrame | None) -> pd.DataFrame | None:
    """Indexes from indexes.unused's data never scanned and enforcing no constraint: what dropping them saves."""
    if usage is None:
        return None
    keep = (usage["idx_scan"] == 0) & ~usage["is_unique"] & ~usage["backs_constraint"]
    if "needed_by_fk" in usage:
        keep &= usage["needed_by_fk"].isna()  # the only index of a foreign key is needed, not unused
    return usage[keep]


def table_trends(ctx, top: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table sizes over the window, the `top` tables by growth); empty frames without history."""
    import pandas as pd  # noqa: PLC0415

    store = store_for(ctx)
    if store is None or not store.has_history(ctx.target.name):
        return pd.DataFrame(columns=["ts", "schema_name", "table_name", "total_bytes"]), pd.DataFrame(
            columns=["schema_name", "table_name", "growth_bytes", "growth_per_day_bytes"])
    start = _window_start(store, ctx.target.name, time.time() - params(ctx)["window_days"] * 86400)
    sizes = store.table_sizes(ctx.target.name, start=start, max_points=PLOT_POINTS)  # read once, for both
    return sizes, store.table_growth(ctx.target.name, start=start, top=top, sizes=sizes)


def headline(rb) -> str:
    """The verdict's first line: the size now and when the tightest limit reaches 80% and 100% (the forecast is
    an ok finding until it is near, but it is the number a capacity report is read for)."""
    from ..core.display import human_bytes  # noqa: PLC0415

    size = rb.data("storage.database_size")
    growth = rb.data("storage.growth_forecast")
    now = size.attrs.get("size_bytes") if size is not None else None
    text = f"Database size {human_bytes(now)}" if now is not None else "Database size not measured"
    fc = growth.attrs.get("forecast") if growth is not None else None
    if growth is None or not len(growth) or fc is None or not fc.ok:
        return text + "; no forecast yet (not enough history)."
    tight = growth.sort_values("limit_value").iloc[0]
    return (f"{text}; {tight['limit']}: 80% {days_text(_days(tight['days_to_trigger']))}, "
            f"100% {days_text(_days(tight['days_to_full']))} ({fc.model} fit).")


def _days(value) -> float | None:
    return None if value is None or value != value else float(value)
