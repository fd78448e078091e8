"""One cost analysis of one target: prices, settings, usage, bill, levers, history; built once per session."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ParameterError
from ..config.paths import CALLER_CWD_ENV
from . import archive as archive_mod
from ..config import pricing, billing as settings_mod
from . import rds, trend as trend_mod, usage as usage_mod
from . import unpriced as unpriced_mod, whatif
from .bill import Bill, compute_bill

HISTORY_WINDOW_DAYS = 30


@dataclass
class Analysis:
    prices: pricing.PriceList
    settings: settings_mod.Settings | None  # None: not priced (see `unpriced`)
    usage: usage_mod.Usage
    bill: Bill | None
    whatifs: list[whatif.WhatIf]
    compute: Any  # DataFrame of compute sizes (whatif.compute_options)
    peak: float | None
    peak_source: str
    archive: Any = None  # DataFrame (archive.estimate) or None
    indexes: Any = None  # DataFrame of unused indexes or None
    archive_days: int = 90
    trend: trend_mod.Trend | None = None
    trend_note: str = ""
    rds: Any = None
    notes: list[str] = field(default_factory=list)
    alternatives: list[Bill] = field(default_factory=list)  # the same usage on every other priced plan
    unpriced: str = ""  # why no bill was computed (a target opsbook has no price list for); "" when priced
    max_connections: int | None = None

    def __bool__(self) -> bool:
        """False when no bill was computed: the runbook's `if a:` cells then chart and record nothing."""
        return not self.unpriced


def resolve_path(name: str, config: Any = None) -> Path:
    """A user-given file: absolute, or relative to where opsbook was called ($PWD), the config file, or here."""
    p = Path(name).expanduser()
    if p.is_absolute():
        return p
    bases = [os.environ.get(CALLER_CWD_ENV), os.environ.get("PWD"),
             str(Path(config.path).parent) if config is not None and getattr(config, "path", None) else None,
             os.getcwd()]
    for base in bases:
        if base and (Path(base) / p).exists():
            return Path(base) / p
    raise ParameterError(f"usage_csv {name!r} not found (looked in: {', '.join(b for b in bases if b)}); "
                         "give an absolute path")


def connection_peak(db, store, target: str) -> tuple[float | None, str, int | None]:
    """(peak client connections, where the number comes from, the server's max_connections)."""
    import pandas as pd  # noqa: PLC0415

    limits = db.fetch("connections/limits").iloc[0]
    max_conn = int(limits["max_connections"])
    if store is not None:
        s = store.series(target, "connections_total")
        if len(s):
            recent = s[s["ts"] >= s["ts"].max() - pd.Timedelta(days=HISTORY_WINDOW_DAYS)]
            return (float(recent["value"].max()), f"history: the highest of {len(recent)} snapshots over the last "
                    f"{HISTORY_WINDOW_DAYS} days of history", max_conn)
    return (float(limits["used_connections"]), "one sample taken now (pg_stat_activity): not a peak; run "
            "`opsbook snapshot` on a schedule to measure real peaks", max_conn)


def _usage(db, prices, target, config, params, s: settings_mod.Settings) -> usage_mod.Usage:
    sql_q, facts, notes = usage_mod.from_database(db)
    csv_q: dict = {}
    csv_name = params.get("usage_csv") or (target.extra.get("usage_csv") if target is not None else None)
    if csv_name:
        csv_q, csv_notes = usage_mod.read_csv(resolve_path(str(csv_name), config))
        notes += csv_notes
    disk = (s.disk_gb, s.sources.get("disk_gb", "")) if s.disk_gb else None
    return usage_mod.combine(sql_q, csv_q, usage_mod.from_params(params), facts, prices.get("disk.autoscale", {}),
                             disk_gb=disk, notes=notes)


def gather(db, target, config, params: dict[str, Any] | None = None, *, compute_thresholds: dict | None = None,
           with_history: bool = True) -> Analysis:
    """Measure, price and weigh every lever for one target (read-only; a few cheap catalog queries)."""
    from ..database.degraded import skip_reason  # noqa: PLC0415

    params = dict(params or {})
    prices = pricing.load(config, target)
    if not unpriced_mod.priced(db, target, params):
        return _unpriced(db, prices, target, config, params)
    s = settings_mod.resolve(prices, target, params)
    usage = _usage(db, prices, target, config, params, s)
    current = compute_bill(prices, usage, s)
    notes = list(usage.notes)
    store, trend_note = trend_mod.open_history(config, target.name) if with_history else (None, trend_mod.NO_HISTORY)
    try:
        peak, peak_source, _ = connection_peak(db, store, target.name)
        th = {"warning": 80, "downsize": 40, **(compute_thresholds or {})}
        options = whatif.compute_options(prices, s, peak, usage.database_gb, **th)
        options.attrs.update(peak_source=peak_source, history=peak_source.startswith("history"),
                             credits=float(prices.plan(s.plan).get("compute_credits_usd", 0)))
        days = int(params.get("archive_days") or 90)
        if days < 1:
            raise ParameterError(f"archive_days must be 1 or more, got {days}")
        archive_rows = indexes = None
        try:
            archive_rows = archive_mod.estimate(db, days, tables=params.get("archive_tables") or None)
        except Exception as e:  # noqa: BLE001 - degrade: say what was skipped
            why = skip_reason(e)
            if why is None:
                raise
            notes.append(f"archive estimate skipped: {why[0]}")
        try:
            indexes = db.fetch("cost/unused_indexes")
        except Exception as e:  # noqa: BLE001
            why = skip_reason(e)
            if why is None:
                raise
            notes.append(f"unused indexes not measured: {why[0]}")
        levers = whatif.levers(prices, usage, s, current, archive_rows=archive_rows, archive_days=days,
                               indexes=indexes, compute=options)
        trend = None
        if store is not None:
            own = usage.databases[usage.databases["is_current"]]["size_bytes"].sum() / usage_mod.GB \
                if usage.databases is not None else None
            trend = trend_mod.cost_trend(prices, usage, s, store, target.name, current_db_gb=own)
            trend_note = trend.note
    finally:
        if store is not None:
            store.close()
    alternatives = [compute_bill(prices, usage, whatif.plan_settings(prices, s, name))
                    for name in whatif.other_plans(prices, s.plan)]
    return Analysis(prices, s, usage, current, levers, options, peak, peak_source, archive_rows, indexes, days,
                    trend, trend_note, rds.compare(prices, current, usage), notes, alternatives)


def _unpriced(db, prices, target, config, params: dict[str, Any]) -> Analysis:
    """What was measured on a target opsbook has no price list for; no plan assumed, no bill, no lever."""
    csv_q: dict = {}
    notes: list[str] = []
    csv_name = params.get("usage_csv") or (target.extra.get("usage_csv") if target is not None else None)
    if csv_name:
        csv_q, notes = usage_mod.read_csv(resolve_path(str(csv_name), config))
    usage = unpriced_mod.measured_usage(db, params, csv_q, notes)
    peak, peak_source, max_conn = connection_peak(db, None, target.name)
    return Analysis(prices, None, usage, None, [], None, peak, peak_source, notes=list(usage.notes),
                    unpriced=unpriced_mod.NOT_PRICED, max_connections=max_conn,
                    trend_note=unpriced_mod.NOT_PRICED)


_CACHE: dict[str, Any] = {}


def for_session(db, target, config, params: dict[str, Any], **kw: Any) -> Analysis:
    """The analysis of this session and parameters, computed once (checks and cells share it). The entry holds
    the session itself, so a new session can never be mistaken for the old one."""
    key = (target.name, repr(sorted((k, repr(v)) for k, v in params.items())))
    if _CACHE.get("db") is not db or _CACHE.get("key") != key:
        _CACHE.clear()  # one runbook run at a time: keep only the latest
        _CACHE.update(db=db, key=key, analysis=gather(db, target, config, params, **kw))
    return _CACHE["analysis"]
