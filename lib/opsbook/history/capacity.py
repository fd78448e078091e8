"""What the capacity checks read besides the live database: the history window, the limits, forecasts per limit."""
from __future__ import annotations

import time
from typing import Any

import pandas as pd

from .. import forecast, limits

DEFAULT_WINDOW_DAYS = 90
DEFAULT_HORIZON_DAYS = 90
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
        store = open_store(ctx.config)
    except Exception:  # noqa: BLE001 - no history is a finding ("start collecting"), never a crash
        return None
    try:
        ctx._opsbook_store = store
    except AttributeError:
        pass
    return store


def history_series(ctx, metric: str, label: str = "") -> pd.DataFrame:
    """The metric over the window (DataFrame[ts, value]); empty without history."""
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
    return forecast.fit(series["ts"], series["value"], kind=kind)


def days_table(fc: forecast.Forecast, current: float, lines: list[limits.Limit],
               trigger_pct: float = SCALING_TRIGGER_PCT) -> pd.DataFrame:
    """One row per limit: its value, % used now, days until the trigger (80%) and until 100%, with the band."""
    rows = []
    for line in lines:
        if not line or not line.value:
            continue
        to_trigger = fc.days_until(line.value * trigger_pct / 100)
        to_full = fc.days_until(line.value)
        rows.append({"limit": line.name, "limit_value": float(line.value), "unit": line.unit,
                     "pct_used": 100.0 * current / line.value,
                     "days_to_trigger": to_trigger.days, "days_to_full": to_full.days,
                     "days_to_full_earliest": to_full.earliest, "days_to_full_latest": to_full.latest,
                     "source": line.source})
    return pd.DataFrame(rows, columns=["limit", "limit_value", "unit", "pct_used", "days_to_trigger", "days_to_full",
                                       "days_to_full_earliest", "days_to_full_latest", "source"])


def days_text(days: float | None) -> str:
    if days is None:
        return "not within ten years at the current trend"
    if days == 0:
        return "already reached"
    return f"in about {days:,.0f} days"
