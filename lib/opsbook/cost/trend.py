"""The cost of past months from the snapshot history, and of the next three from the growth forecast."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bill import Bill, compute_bill
from ..config.pricing import PriceList
from ..config.billing import Settings
from .usage import GB, Usage, provisioned_disk_gb

# usage item -> (history metric, how a month's snapshots combine, bytes -> GB?)
SERIES = {"database": ("database_size_bytes", "mean", True), "storage": ("storage_objects_bytes", "mean", True),
          "mau": ("mau", "max", False)}
GROUPS = {"plan": "plan", "compute": "compute", "credit": "compute", "usage": "usage", "cap": "usage",
          "addon": "add-ons"}
NO_HISTORY = "no history: the past months and the projection need `opsbook snapshot` (run it on a schedule)"


@dataclass
class Trend:
    months: Any  # DataFrame: month, kind (past|projected), total_usd, plan/compute/usage/add-ons USD, quantities
    note: str
    forecasts: dict[str, Any] = field(default_factory=dict)


def open_history(config: Any, target: str) -> tuple[Any, str]:
    """(store, "") when the target has history, else (None, why): never raises for a missing store."""
    try:
        from ..history import open_store  # noqa: PLC0415
    except ImportError:
        return None, NO_HISTORY
    url = str(getattr(config, "history_url", "") or "")
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return None, NO_HISTORY  # opening would create an empty store: a report must not write one
    try:
        store = open_store(config)
    except Exception as e:  # noqa: BLE001 - an unreachable store is reported, not fatal
        return None, f"history store not readable ({e.__class__.__name__}): past months and projection skipped"
    if not store.has_history(target):
        store.close()
        return None, NO_HISTORY
    return store, ""


def groups(bill: Bill) -> dict[str, float]:
    out = {g: 0.0 for g in ("plan", "compute", "usage", "add-ons")}
    for line in bill.lines:
        out[GROUPS[line.kind]] += line.amount_usd
    return {k: round(v, 2) for k, v in out.items()}


def _row(month: str, kind: str, bill: Bill, usage: Usage) -> dict[str, Any]:
    return {"month": month, "kind": kind, "total_usd": bill.total_usd, **{f"{k}_usd": v for k, v in groups(bill).items()},
            "database_gb": usage.database_gb, "disk_gb": usage.get("disk"), "storage_gb": usage.get("storage"),
            "mau": usage.get("mau")}


def cost_trend(prices: PriceList, usage: Usage, settings: Settings, store: Any, target: str, *,
               months: int = 6, ahead: int = 3, current_db_gb: float | None = None) -> Trend:
    """Bills for up to `months` past calendar months and `ahead` projected ones. Items the history does not hold
    (egress, invocations...) stay at this month's values; so does every database but the target's own."""
    import pandas as pd  # noqa: PLC0415

    from ..history import forecast  # noqa: PLC0415

    auto = prices.get("disk.autoscale", {})
    other_db_gb = max(0.0, (usage.database_gb or 0.0) - (current_db_gb if current_db_gb is not None
                                                         else usage.database_gb or 0.0))
    series: dict[str, Any] = {}
    for item, (metric, _, is_bytes) in SERIES.items():
        s = store.series(target, metric)
        if len(s):
            s = s.assign(value=s["value"] / GB + (other_db_gb if item == "database" else 0.0) if is_bytes
                         else s["value"])
            series[item] = s
    if not series:
        return Trend(pd.DataFrame(), NO_HISTORY)
    rows = []
    disk_so_far = 0.0
    stamps = pd.concat([s["ts"] for s in series.values()])
    month_keys = sorted(stamps.dt.strftime("%Y-%m").unique())[-months:]
    for month in month_keys:
        values = {}
        for item, s in series.items():
            sel = s[s["ts"].dt.strftime("%Y-%m") == month]["value"]
            if len(sel):
                values[item] = float(sel.mean() if SERIES[item][1] == "mean" else sel.max())
        if "database" in values:
            disk_so_far = max(disk_so_far, provisioned_disk_gb(values["database"], auto))  # disks never shrink
            values["disk"] = settings.disk_gb or disk_so_far
        u = usage.but(source="history", **values)
        u.database_gb = values.get("database", usage.database_gb)
        rows.append(_row(month, "past", compute_bill(prices, u, settings), u))
    fits = {item: forecast.fit(s["ts"], s["value"]) for item, s in series.items()}
    last = max(s["ts"].max() for s in series.values())
    start = (last + pd.offsets.MonthBegin(1)).normalize()
    for i in range(ahead):
        month_start = start + pd.DateOffset(months=i)
        month_end = month_start + pd.offsets.MonthEnd(0)
        values = {}
        for item, fit in fits.items():
            if fit.ok:
                days = (month_end - pd.Timestamp(fit.last_ts, unit="s", tz="UTC")).total_seconds() / 86400
                values[item] = max(0.0, float(fit.predict(days)[0][0]))
        if "database" in values:
            values["disk"] = max(usage.get("disk"), provisioned_disk_gb(values["database"], auto))
        u = usage.but(source="forecast", **values)
        u.database_gb = values.get("database", usage.database_gb)
        rows.append(_row(month_start.strftime("%Y-%m"), "projected", compute_bill(prices, u, settings), u))
    held = [item for item, fit in fits.items() if not fit.ok]
    note = ("Past months price the history's monthly " + ", ".join(
        f"{'mean' if SERIES[i][1] == 'mean' else 'peak'} {i}" for i in series) +
            "; the projection takes each month's end from the growth fit (" +
            "; ".join(f"{i}: {fits[i].describe()}" for i in fits) + "). Egress, invocations, realtime and image "
            "transformations stay at this month's values.")
    if held:
        note += f" Not enough history to project {', '.join(held)}: held at the current value."
    return Trend(pd.DataFrame(rows), note, fits)
