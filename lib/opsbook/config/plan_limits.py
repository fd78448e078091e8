"""Supabase plan quotas and compute limits, with their source and date, for capacity planning."""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ParameterError

DATA = Path(__file__).parent / "limits-supabase-2026.toml"
PRICE_LIST = "docs/sources/supabase-pricing-2026.md, researched 2026-11-21"
OVERRIDABLE = {"database_size_bytes", "disk_bytes", "storage_bytes", "mau", "max_connections",
               "pooler_max_clients", "spend_cap"}


@functools.cache
def raw() -> dict[str, Any]:
    return tomllib.loads(DATA.read_text())


@dataclass(frozen=True)
class Limit:
    """One line a resource must stay under: what it is, its value, and where the number comes from."""

    name: str
    value: float
    unit: str
    source: str
    note: str = ""
    key: str = ""  # short snake_case name for metrics, e.g. read_only, included_disk

    @property
    def slug(self) -> str:
        return self.key or "".join(ch if ch.isalnum() else "_" for ch in self.name.lower()).strip("_")


@dataclass
class Limits:
    """The limits that apply to one target, resolved from plan, compute size and overrides."""

    plan: str | None
    compute: str | None
    spend_cap: bool | None
    size: list[Limit] = field(default_factory=list)  # database size lines, lowest first
    storage: Limit | None = None
    mau: Limit | None = None
    max_connections: Limit | None = None
    pooler_max_clients: Limit | None = None
    price_list: str = PRICE_LIST

    def frame(self):
        """as_rows() as a DataFrame."""
        import pandas as pd  # noqa: PLC0415

        return pd.DataFrame(self.as_rows(), columns=["limit", "value", "unit", "source", "note"])

    def as_rows(self) -> list[dict[str, Any]]:
        """Every limit as a row (name, value, unit, source, note), for a table in the report."""
        lines = [*self.size, self.storage, self.mau, self.max_connections, self.pooler_max_clients]
        return [{"limit": x.name, "value": x.value, "unit": x.unit, "source": x.source, "note": x.note}
                for x in lines if x is not None]


def plans() -> list[str]:
    return sorted(raw()["plans"])


def computes() -> list[str]:
    return [k for k, v in raw()["compute"].items() if isinstance(v, dict)]


def resolve(plan: str | None, compute: str | None, overrides: dict[str, Any] | None = None) -> Limits:
    """Limits for a plan and compute size (either may be None: unknown), with per-target overrides applied."""
    data = raw()
    over = dict(overrides or {})
    unknown = set(over) - OVERRIDABLE
    if unknown:
        raise ParameterError(f"unknown limit override(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(sorted(OVERRIDABLE))}")
    plan = plan.lower() if plan else None
    compute = compute.lower() if compute else None
    if plan is not None and plan not in data["plans"] and plan != "enterprise":
        raise ParameterError(f"unknown plan {plan!r}; known: {', '.join(plans())}, enterprise")
    if compute is not None and compute not in computes():
        raise ParameterError(f"unknown compute size {compute!r}; known: {', '.join(computes())}")
    p = data["plans"].get(plan or "", {})
    out = Limits(plan=plan, compute=compute, spend_cap=None)
    if p:
        out.spend_cap = bool(over.get("spend_cap", p.get("spend_cap_default", False)))
        out.size = _size_limits(plan, p, out.spend_cap, over)
        out.storage = Limit(f"{plan} plan file storage", over.get("storage_bytes", p["storage_bytes"]), "bytes",
                            _src(p, "storage", over, "storage_bytes"))
        out.mau = Limit(f"{plan} plan monthly active users", over.get("mau", p["mau"]), "users",
                        _src(p, "mau", over, "mau"))
    elif over.get("database_size_bytes"):
        out.size = [Limit("database size limit", over["database_size_bytes"], "bytes", "opsbook.toml override",
                          key="database_size_limit")]
    c = data["compute"].get(compute or "", {})
    where = f"{data['compute']['source']}, {PRICE_LIST} (as of {data['compute']['as_of']})"
    if c or "max_connections" in over:
        out.max_connections = Limit(f"{compute or 'configured'} compute direct connections",
                                    over.get("max_connections", c.get("max_connections")), "connections",
                                    "opsbook.toml override" if "max_connections" in over else where)
    if c or "pooler_max_clients" in over:
        out.pooler_max_clients = Limit(f"{compute or 'configured'} compute pooler clients",
                                       over.get("pooler_max_clients", c.get("pooler_max_clients")), "clients",
                                       "opsbook.toml override" if "pooler_max_clients" in over else where)
    return out


def for_target(target, plan: str | None = None, compute: str | None = None) -> Limits:
    """Limits for a configured target; `plan`/`compute` (runbook parameters) win over the target's config."""
    return resolve(plan or getattr(target, "plan", None), compute or getattr(target, "compute", None),
                   (getattr(target, "extra", {}) or {}).get("limits"))


def _src(p: dict[str, Any], key: str, over: dict[str, Any], over_key: str) -> str:
    if over_key in over:
        return "opsbook.toml override"
    return f"{p[key + '_source']}, {PRICE_LIST} (as of {p[key + '_as_of']})"


def _size_limits(plan: str, p: dict[str, Any], spend_cap: bool, over: dict[str, Any]) -> list[Limit]:
    """Database size lines: the plan's limit, and for paid plans the disk's auto-scaling and read-only points."""
    src = _src(p, "database_size", over, "database_size_bytes")
    included = over.get("database_size_bytes", p["database_size_bytes"])
    if not p.get("disk_autoscale"):
        return [Limit(f"{plan} plan database size", included, "bytes", src, key="plan_database_size")]
    auto = raw()["disk_autoscaling"]
    auto_src = f"{auto['source']}, {PRICE_LIST} (as of {auto['as_of']})"
    disk = over.get("disk_bytes", included)
    lines = [Limit(f"{plan} plan included disk", included, "bytes", src,
                   f"beyond it: {p['disk_overage_usd_per_gb_month']} USD/GB-month", key="included_disk")]
    if spend_cap:
        lines.append(Limit("read-only at 95% of disk (spend cap on: no auto-scaling)",
                           disk * auto["read_only_pct"] / 100, "bytes", auto_src,
                           "Pro disk does not grow past 8 GB while the spend cap is on (S10, S6)", key="read_only"))
    else:
        lines.append(Limit(f"disk auto-scales at {auto['trigger_pct']}% full", disk * auto["trigger_pct"] / 100,
                           "bytes", auto_src, f"grows by {auto['grow_pct_under_1tb']}% under 1 TB, at most "
                           f"{auto['max_resizes_per_24h']} resizes per 24 h; read-only at {auto['read_only_pct']}%",
                           key="autoscale_trigger"))
    return sorted(lines, key=lambda x: x.value)
