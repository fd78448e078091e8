"""What would lower the bill: each lever re-prices the month with one thing changed and reports the USD delta."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .bill import Bill, compute_bill, money, num
from ..config.pricing import PriceList
from ..config.billing import PITR_CHOICES, Settings
from .usage import GB, Usage


@dataclass
class WhatIf:
    """One lever: what changes, the bill's monthly delta (negative saves money), and why."""

    lever: str  # archive | unused_indexes | compute | plan | pitr
    title: str
    delta_usd: float
    new_total_usd: float
    detail: str
    caveat: str = ""
    fits: bool = True  # False: the usage would not fit (restricted on a plan without overage)
    tradeoff: bool = False  # True: saves money by giving something up (recovery window, features, headroom)

    @property
    def savings_usd(self) -> float:
        return money(-self.delta_usd)


def _price(prices: PriceList, usage: Usage, settings: Settings, current: Bill) -> tuple[Bill, float]:
    new = compute_bill(prices, usage, settings)
    return new, money(new.total_usd - current.total_usd)


# ------------------------------------------------------------------ freeing database space
def disk_after_shrink(prices: PriceList, database_gb: float, disk_gb: float) -> float:
    """The disk Supabase would shrink to for this database size (never larger than today's)."""
    auto = prices.get("disk.autoscale", {})
    target = max(float(auto.get("min_gb", 8)), math.ceil(float(auto.get("shrink_factor", 1.2)) * database_gb))
    return min(disk_gb, float(target))


def free_space(prices: PriceList, usage: Usage, settings: Settings, current: Bill, freed_bytes: float,
               lever: str, title: str, what: str) -> WhatIf:
    """Price freeing `freed_bytes` of database space: money moves only if the disk can shrink a size."""
    db_gb = usage.database_gb or 0.0
    freed_gb = min(freed_bytes / GB, db_gb)
    after_gb = db_gb - freed_gb
    disk = usage.get("disk")
    shrunk = disk_after_shrink(prices, after_gb, disk)
    new, delta = _price(prices, usage.but(database=after_gb, disk=shrunk), settings, current)
    detail = (f"{what}: frees about {num(freed_gb * 1024, 'MB') if freed_gb < 1 else num(freed_gb, 'GB')} "
              f"({100 * freed_gb / db_gb if db_gb else 0:.0f}% of the {num(db_gb, 'GB')} of databases). ")
    if delta < 0:
        alone = _price(prices, usage.but(disk=disk_after_shrink(prices, db_gb, disk)), settings, current)[1]
        detail += (f"The disk could then shrink from {num(disk, 'GB')} to {num(shrunk, 'GB')}, which saves "
                   f"{-delta:.2f} USD a month")
        detail += (f", of which {-alone:.2f} the shrink alone would save (the disk is larger than the data "
                   "needs)." if alone < 0 else ".")
        caveat = ("Supabase shrinks a disk only during a Postgres version upgrade (to 1.2× the database size, at "
                  "least 8 GB); until then the space is headroom.")
    elif shrunk < disk:
        detail += (f"The disk could shrink from {num(disk, 'GB')} to {num(shrunk, 'GB')}, but its cost is already "
                   "kept off the bill (spend cap or plan), so the bill does not change.")
        caveat = "The gain is headroom: the database stays further from read-only."
    else:
        detail += (f"The disk stays at {num(disk, 'GB')} (8 GB are included), so the bill does not change; the "
                   "space is headroom and delays the next auto-scale step.")
        caveat = ""
    return WhatIf(lever, title, delta, new.total_usd, detail, caveat)


def shrink_disk(prices: PriceList, usage: Usage, settings: Settings, current: Bill) -> WhatIf | None:
    """The disk larger than the data needs (it grew, then data went away): shrink it at the next upgrade."""
    db_gb, disk = usage.database_gb or 0.0, usage.get("disk")
    shrunk = disk_after_shrink(prices, db_gb, disk)
    if shrunk >= disk:
        return None
    new, delta = _price(prices, usage.but(disk=shrunk), settings, current)
    return WhatIf("disk_shrink", "Shrink the disk to fit the data", delta, new.total_usd,
                  f"The disk is {num(disk, 'GB')} for {num(db_gb, 'GB')} of databases; shrunk to 1.2× the data it "
                  f"would be {num(shrunk, 'GB')}" + (f", saving {-delta:.2f} USD a month." if delta < 0 else
                                                     ", but its cost is already kept off the bill."),
                  "Supabase shrinks a disk only during a Postgres version upgrade (Settings > Infrastructure); plan "
                  "the upgrade window.")


def archive(prices: PriceList, usage: Usage, settings: Settings, current: Bill, candidates, days: int) -> WhatIf:
    """Archive (export, then delete) rows older than `days` from every table with a creation timestamp."""
    freed = float(candidates["older_bytes"].sum()) if candidates is not None and len(candidates) else 0.0
    top = ", ".join(f"{r.table_name} ({r.older_pct:.0f}% old)" for r in
                    candidates.head(3).itertuples()) if freed else "no table has rows that old"
    return free_space(prices, usage, settings, current, freed, "archive", f"Archive rows older than {days} days",
                      f"Rows older than {days} days in {int((candidates['older_bytes'] > 0).sum()) if freed else 0} "
                      f"tables, mostly {top}")


def unused_indexes(prices: PriceList, usage: Usage, settings: Settings, current: Bill, indexes) -> WhatIf:
    freed = float(indexes["size_bytes"].sum()) if indexes is not None and len(indexes) else 0.0
    names = ", ".join(indexes["index_name"].head(3)) if freed else "none found"
    w = free_space(prices, usage, settings, current, freed, "unused_indexes", "Drop the unused indexes",
                   f"{len(indexes) if indexes is not None else 0} indexes never scanned since the statistics were "
                   f"reset ({names})")
    w.caveat = (w.caveat + " " if w.caveat else "") + ("Check replicas and rare jobs (month-end reports) before "
                                                       "dropping; writes get cheaper too.")
    return w


# ------------------------------------------------------------------ compute size
def compute_options(prices: PriceList, settings: Settings, peak: float | None, database_gb: float | None, *,
                    warning: float = 80, downsize: float = 40) -> Any:
    """Every compute size the plan can use: limits, the peak's share of each, and which one the load needs."""
    import pandas as pd  # noqa: PLC0415

    plan = prices.plan(settings.plan)
    current = settings.compute
    if plan.get("pays_overage") and prices.size(current).get("paid_billed_as"):
        current = prices.size(current)["paid_billed_as"]  # Nano in a paid organization is Micro
    rows = []
    for name, size in prices.sizes().items():
        if plan.get("pays_overage") and size.get("paid_billed_as"):
            continue  # billed as another size: not a real choice in a paid organization
        if not plan.get("addons_available", True) and size.get("usd_hour", 0) > 0:
            continue
        max_conn = float(size.get("max_connections", 0)) or None
        rows.append({"size": name, "label": size.get("label", name), "ram_gb": float(size.get("ram_gb", 0)),
                     "max_connections": max_conn,
                     "usd_month": money(prices.hours_per_month, size.get("usd_hour", 0)),
                     "peak_pct": round(100 * peak / max_conn, 1) if peak is not None and max_conn else None,
                     "current": name == current})
    df = pd.DataFrame(rows)
    df.attrs.update(peak=peak, database_gb=database_gb)
    return recommend(df, warning=warning, downsize=downsize)


def recommend(df, *, warning: float = 80, downsize: float = 40):
    """Mark the size the measured load needs. Too small: the peak reaches `warning`% of max_connections, so take
    the smallest larger size under it. Too large: a smaller size holds the peak under `downsize`% of its
    connections and has at least a quarter of the database size in RAM; take the smallest such size."""
    df = df.copy()
    peak, database_gb = df.attrs.get("peak"), float(df.attrs.get("database_gb") or 0)
    current = int(df.index[df["current"]][0]) if df["current"].any() else None
    pick = current
    if peak is not None and current is not None:
        if df.at[current, "peak_pct"] >= warning:
            bigger = df[(df.index > current) & (df["peak_pct"] < warning)]
            pick = int(bigger.index[0]) if len(bigger) else len(df) - 1
        else:
            fits = df[(df.index < current) & (df["peak_pct"] <= downsize) & (df["ram_gb"] >= database_gb / 4)]
            pick = int(fits.index[0]) if len(fits) else current
    df["recommended"] = df.index == pick
    df.attrs.update(warning=warning, downsize=downsize)
    return df


def change_compute(prices: PriceList, usage: Usage, settings: Settings, current: Bill, size: str,
                   why: str, sampled: bool = False) -> WhatIf:
    """Another compute size; `sampled`: the peak is one sample, not a measured peak (a trade-off: less sure)."""
    new, delta = _price(prices, usage, settings.but(compute=size), current)
    label = prices.size(size).get("label", size)
    caveat = "Changing size restarts the database (a few minutes of downtime)."
    if sampled and delta < 0:
        caveat += " The peak is one sample taken now; confirm with a month of snapshots before downsizing."
    return WhatIf("compute", f"Compute {prices.size(settings.compute).get('label')} → {label}", delta,
                  new.total_usd, why, caveat, tradeoff=sampled and delta < 0)


# ------------------------------------------------------------------ plan and PITR
def other_plans(prices: PriceList, current: str) -> list[str]:
    """Plans with a public price and quotas, other than `current`."""
    return [name for name, plan in prices.plans().items() if name != current and "usd_month" in plan
            and f"quota_{name}" in prices.items().get("egress", {})]


def plan_settings(prices: PriceList, settings: Settings, plan_name: str) -> Settings:
    """The same project on another plan: its default spend cap; on a plan without add-ons, none and free compute."""
    plan = prices.plan(plan_name)
    changes: dict[str, Any] = {"plan": plan_name, "spend_cap": bool(plan.get("spend_cap_default"))}
    if not plan.get("addons_available", True):
        changes.update(compute=plan.get("default_compute", "nano"), pitr_days=0, ipv4=False, custom_domain=False,
                       read_replicas=0, log_drains=0, disk_iops=None, disk_throughput_mbps=None)
    return settings.but(**changes)


def change_plan(prices: PriceList, usage: Usage, settings: Settings, current: Bill, plan_name: str) -> WhatIf:
    plan = prices.plan(plan_name)
    label = plan.get("label", plan_name)
    moved = plan_settings(prices, settings, plan_name)
    dropped = [settings.addons_text()] if moved.addons_text() != settings.addons_text() else []
    new, delta = _price(prices, usage, moved, current)
    over = [line.item.lower() for line in new.over_quota()]
    detail = f"The same usage on the {label} plan costs {new.total_usd:.2f} USD a month."
    caveat = ""
    if over and not plan.get("pays_overage"):
        caveat = f"Does not fit: {', '.join(over)} over the {label} quotas; the project would be restricted."
    elif over:
        detail += f" Over its quotas: {', '.join(over)}."
    if dropped:
        caveat += f" Drops what the {label} plan lacks: {dropped[0]}; compute becomes {moved.compute}."
    if plan.get("note"):
        caveat += f" {plan['note'][0].upper()}{plan['note'][1:]}."
    return WhatIf("plan", f"Plan {prices.plan(settings.plan).get('label')} → {label}", delta, new.total_usd,
                  detail, caveat.strip(), fits=not (over and not plan.get("pays_overage")), tradeoff=True)


def change_pitr(prices: PriceList, usage: Usage, settings: Settings, current: Bill, days: int) -> WhatIf:
    new, delta = _price(prices, usage, settings.but(pitr_days=days), current)
    now = f"{settings.pitr_days} days" if settings.pitr_days else "off"
    then = f"{days} days" if days else "off"
    caveat = ("Without PITR, recovery falls back to the daily backup: up to 24 hours of data lost (the guides' "
              "RPO is 24 hours)." if not days else "")
    return WhatIf("pitr", f"Point-in-time recovery {now} → {then}", delta, new.total_usd,
                  f"PITR {then}: {new.amount('pitr'):.2f} USD a month instead of {current.amount('pitr'):.2f}.",
                  caveat, tradeoff=days < settings.pitr_days)


def levers(prices: PriceList, usage: Usage, settings: Settings, current: Bill, *, archive_rows=None,
           archive_days: int = 90, indexes=None, compute=None) -> list[WhatIf]:
    """Every lever: those the usage fits, most money saved first; then those it would not fit."""
    out = [w for w in [shrink_disk(prices, usage, settings, current)] if w is not None]
    if archive_rows is not None:
        out.append(archive(prices, usage, settings, current, archive_rows, archive_days))
    if indexes is not None:
        out.append(unused_indexes(prices, usage, settings, current, indexes))
    if compute is not None and len(compute):
        rec = compute[compute["recommended"]].iloc[0]
        if rec["size"] != settings.compute:
            out.append(change_compute(prices, usage, settings, current, rec["size"],
                                      f"The measured peak of {num(compute.attrs.get('peak'))} connections "
                                      f"uses {rec['peak_pct']:.0f}% of {rec['label']}'s "
                                      f"{num(rec['max_connections'])}.", sampled=not compute.attrs.get("history")))
    for name in other_plans(prices, settings.plan):
        out.append(change_plan(prices, usage, settings, current, name))
    if prices.plan(settings.plan).get("addons_available", True):
        for days in PITR_CHOICES:
            if days != settings.pitr_days:
                out.append(change_pitr(prices, usage, settings, current, days))
    return sorted(out, key=lambda w: (not w.fits, w.delta_usd, w.lever))  # what fits, most saved first
