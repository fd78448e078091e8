"""The monthly bill as lines: plan, compute less credits, each metered item, each add-on, the spend cap's effect.

Conventions (stated in every report): hourly items are priced at the price list's hours_per_month (730 h, the
average month; a 31-day month has 744 h); each line is rounded to the cent (half up) and the total is the sum of
the rounded lines, as an invoice does; overage is prorated per unit (no whole packages).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from ..core.errors import ConfigError
from ..config.pricing import PriceList
from ..config.billing import Settings
from .usage import Usage

CENT = Decimal("0.01")


def money(*factors: float) -> float:
    """The product of `factors`, computed in decimal and rounded to the cent, half up: 730 h × 0.0055 = 4.015 ->
    4.02 (binary floats would give 4.01)."""
    product = Decimal(1)
    for f in factors:
        product *= Decimal(repr(float(f)))
    return float(product.quantize(CENT, rounding=ROUND_HALF_UP))


def num(x: float | None, unit: str = "") -> str:
    """A quantity for a sentence: 1,234 / 12.5 / 0.25."""
    if x is None:
        return "?"
    text = f"{x:,.0f}" if abs(x - round(x)) < 1e-9 or abs(x) >= 1000 else f"{x:,.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".strip()


@dataclass
class Line:
    """One line of the bill; `note` is the plain sentence a manager reads."""

    key: str  # metric name part: cost_<key>_usd
    item: str
    kind: str  # plan | compute | credit | usage | addon | cap
    amount_usd: float
    quantity: float | None = None
    unit: str = ""
    unit_price_usd: float | None = None
    price_unit: str = ""
    included: float | None = None
    over: float | None = None
    note: str = ""
    price_source: str = ""
    usage_source: str = ""
    capped: bool = False  # an overage the spend cap covers


@dataclass
class Bill:
    settings: Settings
    lines: list[Line]
    hours: float
    price_list: str
    usage: Usage | None = field(default=None, repr=False)

    @property
    def total_usd(self) -> float:
        return money(sum(line.amount_usd for line in self.lines))

    @property
    def uncapped_usd(self) -> float:
        """What the month would cost without the spend cap's protection."""
        return money(sum(line.amount_usd for line in self.lines if line.kind != "cap"))

    def amount(self, key: str) -> float:
        return money(sum(line.amount_usd for line in self.lines if line.key == key))

    def line(self, key: str) -> Line | None:
        return next((line for line in self.lines if line.key == key), None)

    def over_quota(self) -> list[Line]:
        return [line for line in self.lines if line.kind == "usage" and (line.over or 0) > 0]

    def metrics(self) -> dict[str, float]:
        """monthly_cost_usd and cost_<line>_usd for every line."""
        out = {"monthly_cost_usd": self.total_usd}
        for line in self.lines:
            out[f"cost_{line.key}_usd"] = self.amount(line.key)
        return out

    def to_frame(self):
        import pandas as pd  # noqa: PLC0415

        return pd.DataFrame([dataclasses.asdict(line) for line in self.lines])


def compute_bill(prices: PriceList, usage: Usage, settings: Settings) -> Bill:
    """Price one month of `usage` under `settings`."""
    plan = prices.plan(settings.plan)
    plan_label = plan.get("label", settings.plan)
    if "usd_month" not in plan:
        raise ConfigError(f"the {plan_label} plan has custom pricing; set usd_month (and quota_{settings.plan} per "
                          f"item) in opsbook.toml [pricing.plans.{settings.plan}]")
    hours = prices.hours_per_month
    lines = [Line("plan", f"{plan_label} plan", "plan", money(plan["usd_month"]), 1, "month", plan["usd_month"],
                  "USD/month", note=_plan_note(plan_label, plan),
                  price_source=prices.cite(f"plans.{settings.plan}.usd_month"),
                  usage_source=settings.sources.get("plan", ""))]
    compute = _compute_lines(prices, settings, plan, hours)
    lines += compute
    for name, item in prices.items().items():
        line = _item_line(prices, usage, settings, name, item, plan_label)
        if line is not None:
            lines.append(line)
    lines += _disk_extras(prices, settings)
    lines += _addon_lines(prices, usage, settings, plan, hours)
    if settings.spend_cap:
        capped = [line for line in lines if line.capped and line.amount_usd > 0]
        covered = money(sum(line.amount_usd for line in capped))
        note = ("The spend cap is on: usage past these quotas is not billed; instead Supabase restricts the project "
                f"({', '.join(line.item.lower() for line in capped)}; disk stays at 8 GB and the database turns "
                "read-only when it fills)." if capped else
                "The spend cap is on; nothing is over quota, so it changes nothing this month.")
        lines.append(Line("spend_cap", "Spend cap", "cap", -covered + 0.0, note=note,
                          price_source="S10, S6", usage_source=settings.sources.get("spend_cap", "")))
    return Bill(settings, lines, hours, prices.describe(), usage)


def _plan_note(label: str, plan: dict) -> str:
    credits = plan.get("compute_credits_usd", 0)
    text = f"The {label} plan's fixed monthly fee, for the quotas listed below"
    if credits:
        text += f" and {num(credits)} USD of compute credits"
    if plan.get("note"):
        text += f"; {plan['note']}"
    return text + "."


def _billed_size(prices: PriceList, settings: Settings, plan: dict) -> tuple[str, dict]:
    size = prices.size(settings.compute)
    if plan.get("pays_overage") and size.get("paid_billed_as"):
        return size["paid_billed_as"], prices.size(size["paid_billed_as"])
    return settings.compute, size


def _compute_lines(prices: PriceList, settings: Settings, plan: dict, hours: float) -> list[Line]:
    name, size = _billed_size(prices, settings, plan)
    rate = float(size.get("usd_hour", 0))
    amount = money(hours, rate)
    label = prices.size(settings.compute).get("label", settings.compute)
    note = (f"The database server, billed by the hour: {num(hours)} h × {rate:g} USD."
            if rate else "The free compute size: no charge.")
    if name != settings.compute:
        note += f" {label} is billed as {size.get('label', name)} in paid organizations."
    lines = [Line("compute", f"Compute: {label} ({num(size.get('ram_gb'))} GB RAM, {size.get('cpu', '')})",
                  "compute", amount, hours, "hours", rate, "USD/hour", note=note,
                  price_source=prices.cite(f"compute.{name}.usd_hour"),
                  usage_source=settings.sources.get("compute", ""))]
    credits = float(plan.get("compute_credits_usd", 0))
    if credits:
        used = min(money(credits), amount)
        lines.append(Line("compute_credits", "Compute credits", "credit", -used, note=(
            f"The plan includes {num(credits)} USD of compute credits a month for the primary database "
            f"(not replicas or branches); {'they cover all of the compute above' if used < credits else 'used in full'}"
            f"{'' if used >= credits else f', the unused {money(credits - used):.2f} USD do not carry over'}."),
            price_source=prices.cite(f"plans.{settings.plan}.compute_credits_usd")))
    return lines


UNMEASURED_WHY = "Not measured:"


def _item_line(prices: PriceList, usage: Usage, settings: Settings, name: str, item: dict,
               plan_label: str) -> Line | None:
    plan = prices.plan(settings.plan)
    q = usage.quantity("database" if name == "disk" and not plan.get("pays_overage") else name)
    if item.get("optional") and q.value is None:
        return None
    quota_key = f"quota_{settings.plan}"
    if quota_key not in item:
        raise ConfigError(f"the price list has no {quota_key} for {name}; add it in opsbook.toml "
                          f"[pricing.items.{name}]")
    quota, per, price, unit = float(item[quota_key]), float(item.get("per", 1)), float(item["overage_usd"]), \
        item.get("unit", "")
    used = q.value or 0.0
    unavailable = quota < 0
    over = used if unavailable else max(0.0, used - quota)
    pays = bool(plan.get("pays_overage")) and not unavailable
    amount = money(over, price, 1 / per) if pays else 0.0
    per_text = f"per {num(per)} {unit}" if per != 1 else f"per {unit.rstrip('s') or 'unit'}"
    label = item.get("label", name)
    if q.value is None:
        note = f"{UNMEASURED_WHY} {q.detail}."
    elif unavailable:
        note = (f"{num(used, unit)} used, but {label.lower()} is not available on the {plan_label} plan."
                if used else f"Not available on the {plan_label} plan.")
    elif over <= 0 and name == "disk" and pays:
        note = (f"The databases ({num(usage.database_gb, 'GB')}) fit the {num(quota, unit)} disk the plan includes: "
                "no charge." if usage.database_gb is not None else f"{num(used, unit)} disk, included: no charge.")
    elif over <= 0:
        pct = 100 * used / quota if quota else 0
        note = f"{num(used, unit)} of {num(quota, unit)} included ({pct:.0f}%): no charge."
    elif pays:
        note = f"{num(over, unit)} over the {num(quota, unit)} included, at {price:g} USD {per_text}."
        if settings.spend_cap and item.get("spend_cap"):
            note += " Not charged while the spend cap is on (see the spend cap line)."
    else:
        note = (f"{num(over, unit)} over the {plan_label} plan's {num(quota, unit)}: not billed, but the project is "
                "restricted" + (" (the database turns read-only)" if name == "disk" else "") +
                " until usage falls or the plan is upgraded.")
    if name == "disk" and q.value is not None and pays and over > 0:
        note = f"Provisioned disk ({q.detail}). " + note
    return Line(name, label, "usage", amount, used if q.value is not None else None, unit, price,
                f"USD {per_text}", None if unavailable else quota, over, note,
                prices.cite(f"items.{name}.overage_usd", f"items.{name}.{quota_key}"),
                f"{q.source}: {q.detail}" if q.detail else q.source, capped=bool(item.get("spend_cap")) and pays)


def _disk_extras(prices: PriceList, settings: Settings) -> list[Line]:
    disk = prices.get("disk", {})
    out = []
    for key, have, included, price_key, unit in (
            ("disk_iops", settings.disk_iops, "included_iops", "iops_usd_month", "IOPS"),
            ("disk_throughput", settings.disk_throughput_mbps, "included_throughput_mbps",
             "throughput_usd_mbps_month", "MB/s")):
        if not have or have <= disk.get(included, 0):
            continue
        extra, rate = have - disk[included], float(disk[price_key])
        out.append(Line(key, f"Disk {unit} above the included {num(disk[included])}", "addon", money(extra, rate),
                        extra, unit, rate, f"USD per {unit}-month",
                        note=f"{num(have)} {unit} provisioned, {num(extra)} above the included {num(disk[included])}.",
                        price_source=prices.cite(f"disk.{price_key}"), usage_source=settings.sources.get(key, "")))
    return out


def _hourly(prices: PriceList, key: str, label: str, path: str, hours: float, count: float, note: str,
            source: str) -> Line:
    rate = float(prices.get(path))
    return Line(key, label, "addon", money(hours, rate, count), hours * count, "hours", rate, "USD/hour",
                note=note, price_source=prices.cite(path), usage_source=source)


def _addon_lines(prices: PriceList, usage: Usage, s: Settings, plan: dict, hours: float) -> list[Line]:
    out = []
    src = s.sources
    if s.pitr_days:
        out.append(_hourly(prices, "pitr", f"Point-in-time recovery, {s.pitr_days} days",
                           f"addons.pitr_{s.pitr_days}_usd_hour", hours, 1,
                           f"Restore to any second of the last {s.pitr_days} days; billed hourly. Daily backups "
                           "are included without it.", src.get("pitr_days", "")))
    if s.custom_domain:
        out.append(_hourly(prices, "custom_domain", "Custom domain", "addons.custom_domain_usd_hour", hours, 1,
                           "Serves the API from your own domain; billed hourly.", src.get("custom_domain", "")))
    if s.ipv4:
        n = 1 + s.read_replicas
        out.append(_hourly(prices, "ipv4", "Dedicated IPv4 address", "addons.ipv4_usd_hour", hours, n,
                           f"A dedicated IPv4 address for {'the database' if n == 1 else f'{n} databases (replicas included)'}"
                           "; billed hourly.", src.get("ipv4", "")))
    if s.read_replicas:
        name, size = _billed_size(prices, s, plan)
        out.append(_hourly(prices, "read_replicas_compute", f"Read replicas: {s.read_replicas} × "
                           f"{size.get('label', name)} compute", f"compute.{name}.usd_hour", hours, s.read_replicas,
                           "Each replica runs on the primary's compute size, billed hourly; credits do not apply.",
                           src.get("read_replicas", "")))
        factor = float(prices.get("addons.read_replica_disk_factor"))
        rate = float(prices.get("items.disk.overage_usd"))
        primary = usage.get("disk")
        if s.spend_cap:  # under the cap the primary's disk stays at the included size
            primary = min(primary, float(prices.get(f"items.disk.quota_{s.plan}", primary)))
        gb = factor * primary * s.read_replicas
        out.append(Line("read_replicas_disk", "Read replicas: disk", "addon", money(gb, rate), gb, "GB", rate,
                        "USD per GB-month", note=f"Each replica's disk is {factor:g}× the primary's "
                        f"{num(primary, 'GB')}, billed from the first GB.",
                        price_source=prices.cite("addons.read_replica_disk_factor", "items.disk.overage_usd"),
                        usage_source=src.get("read_replicas", "")))
    if s.log_drains:
        out.append(_hourly(prices, "log_drains", f"Log drains: {s.log_drains}", "addons.log_drain_usd_hour", hours,
                           s.log_drains, "Each drain is billed hourly; its events (0.20 USD per million) and egress "
                           "are not counted here.", src.get("log_drains", "")))
    return out
