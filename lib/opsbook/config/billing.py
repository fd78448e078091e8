"""What the organization buys: plan, compute size, spend cap and add-ons, from parameters, opsbook.toml or defaults."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import ConfigError, ParameterError
from .pricing import PriceList

PITR_CHOICES = (0, 7, 14, 28)
ADDON_KEYS = {"pitr_days": int, "ipv4": bool, "custom_domain": bool, "read_replicas": int, "log_drains": int,
              "disk_iops": int, "disk_throughput_mbps": int}
TARGET_KEYS = {"spend_cap": bool, "disk_gb": (int, float), "usage_csv": str}


@dataclass(frozen=True)
class Settings:
    """One configuration of a Supabase project's bill; `sources` says where each value came from."""

    plan: str
    compute: str
    spend_cap: bool = False
    pitr_days: int = 0
    ipv4: bool = False
    custom_domain: bool = False
    read_replicas: int = 0
    log_drains: int = 0
    disk_gb: float | None = None  # provisioned disk, when known; else estimated from the database size
    disk_iops: int | None = None  # provisioned IOPS, when raised above the included 3000
    disk_throughput_mbps: int | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def but(self, **changes: Any) -> "Settings":
        """A what-if copy with some values changed (sources say so)."""
        sources = {**self.sources, **{k: "what-if" for k in changes}}
        return dataclasses.replace(self, **changes, sources=sources)

    def addons_text(self) -> str:
        parts = []
        if self.pitr_days:
            parts.append(f"PITR {self.pitr_days} days")
        if self.ipv4:
            parts.append("IPv4")
        if self.custom_domain:
            parts.append("custom domain")
        if self.read_replicas:
            parts.append(f"{self.read_replicas} read replica{'s' * (self.read_replicas > 1)}")
        if self.log_drains:
            parts.append(f"{self.log_drains} log drain{'s' * (self.log_drains > 1)}")
        return ", ".join(parts) or "none"


def _typed(value: Any, kind: Any, name: str, err: type[Exception], where: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise err(f"{where}: {name} must be {kinds[0].__name__}, got {value!r}")
    if not isinstance(value, kinds):
        raise err(f"{where}: {name} must be {kinds[0].__name__}, got {value!r}")
    return value


def _target_settings(target: Any) -> dict[str, tuple[Any, str]]:
    """Values from opsbook.toml: [targets.X] spend_cap/disk_gb/usage_csv and [targets.X.addons]."""
    if target is None:
        return {}
    where = f"opsbook.toml [targets.{target.name}]"
    out: dict[str, tuple[Any, str]] = {}
    for key, kind in TARGET_KEYS.items():
        if key in target.extra:
            out[key] = (_typed(target.extra[key], kind, key, ConfigError, where), where)
    addons = target.extra.get("addons", {})
    if not isinstance(addons, dict):
        raise ConfigError(f"{where}: addons must be a table, e.g. [targets.{target.name}.addons] pitr_days = 7")
    for key, value in addons.items():
        if key not in ADDON_KEYS:
            raise ConfigError(f"{where}.addons: unknown add-on {key!r}; known: {', '.join(ADDON_KEYS)}")
        out[key] = (_typed(value, ADDON_KEYS[key], key, ConfigError, f"{where}.addons"), f"{where}.addons")
    return out


def check_addons(addons: dict[str, Any], what: str) -> None:
    """[targets.X.addons] as opsbook.toml gives it: known add-ons, each of its type and within its bound."""
    for key, value in addons.items():
        if key not in ADDON_KEYS:
            raise ConfigError(f"{what}: unknown add-on {key!r}; known: {', '.join(ADDON_KEYS)}")
        _typed(value, ADDON_KEYS[key], key, ConfigError, what)
    if addons.get("pitr_days", 0) not in PITR_CHOICES:
        raise ConfigError(f"{what}.pitr_days must be one of {', '.join(map(str, PITR_CHOICES))} (0 = no PITR), "
                          f"got {addons['pitr_days']}")
    for key in ("read_replicas", "log_drains", "disk_iops", "disk_throughput_mbps"):
        if addons.get(key, 0) < 0:
            raise ConfigError(f"{what}.{key} must be 0 or more, got {addons[key]}")


_TRUE, _FALSE = {"true", "on", "yes", "1"}, {"false", "off", "no", "0"}


def flag(name: str, value: Any) -> Any:
    """A yes/no parameter given as text (the runbook parameter types have no `bool | None`): on/off, true/false."""
    if isinstance(value, str):
        if value.strip().lower() in _TRUE:
            return True
        if value.strip().lower() in _FALSE:
            return False
        raise ParameterError(f"{name} must be on or off (true/false), got {value!r}")
    return value


def resolve(prices: PriceList, target: Any = None, params: dict[str, Any] | None = None) -> Settings:
    """Parameters win over opsbook.toml, which wins over the plan's defaults; invalid combinations are refused."""
    params = {k: flag(k, v) if k in ("spend_cap", "ipv4", "custom_domain") else v
              for k, v in (params or {}).items() if v is not None and v != ""}
    conf = _target_settings(target)
    sources: dict[str, str] = {}
    values: dict[str, Any] = {}

    def pick(key: str, target_value: Any = None, target_where: str = "", default: Any = None, why: str = ""):
        if key in params:
            values[key], sources[key] = params[key], "parameter"
        elif key in conf:
            values[key], sources[key] = conf[key]
        elif target_value is not None:
            values[key], sources[key] = target_value, target_where
        else:
            values[key], sources[key] = default, why

    where = f"opsbook.toml [targets.{target.name}]" if target is not None else ""
    if target is not None and target.name == "demo" and not target.extra:
        where = "the built-in demo target"
    pick("plan", getattr(target, "plan", None), where, "pro", "assumed: no plan configured for this target")
    plan = prices.plan(values["plan"])
    err = ParameterError if sources["plan"] == "parameter" else ConfigError
    pick("compute", getattr(target, "compute", None), where, plan.get("default_compute", "micro"),
         f"the {plan.get('label', values['plan'])} plan's default")
    prices.size(values["compute"])
    pick("spend_cap", default=bool(plan.get("spend_cap_default", False)),
         why=f"Supabase's default for {plan.get('label', values['plan'])}")
    for key, kind in ADDON_KEYS.items():
        pick(key, default=0 if kind is int else False, why="not configured")
    pick("disk_gb", why="estimated from the database size")
    for key in ("pitr_days", "ipv4", "custom_domain", "read_replicas", "log_drains", "spend_cap"):
        _typed(values[key], ADDON_KEYS.get(key, bool), key, ParameterError, sources[key])
    _validate(prices, values, sources, err)
    return Settings(**{k: values[k] for k in ("plan", "compute", "spend_cap", *ADDON_KEYS, "disk_gb")},
                    sources=sources)


def _validate(prices: PriceList, v: dict[str, Any], sources: dict[str, str], err: type[Exception]) -> None:
    plan = prices.plan(v["plan"])
    label = plan.get("label", v["plan"])
    if v["spend_cap"] and not plan.get("spend_cap_available", False):
        e = ParameterError if sources["spend_cap"] == "parameter" else ConfigError
        raise e(f"spend_cap: the {label} plan has no spend cap (only Pro does); set spend_cap = false")
    if v["pitr_days"] not in PITR_CHOICES:
        e = ParameterError if sources["pitr_days"] == "parameter" else ConfigError
        raise e(f"pitr_days must be one of {', '.join(map(str, PITR_CHOICES))} (0 = no PITR), got {v['pitr_days']}")
    for key in ("read_replicas", "log_drains"):
        if v[key] < 0:
            raise ParameterError(f"{key} must be 0 or more, got {v[key]}")
    if not plan.get("addons_available", True):
        bought = [k for k in ("pitr_days", "ipv4", "custom_domain", "read_replicas", "log_drains") if v[k]]
        if bought:
            raise err(f"the {label} plan has no add-ons, but {', '.join(bought)} {'is' if len(bought) == 1 else 'are'}"
                      " set; choose a paid plan or turn them off")
        if prices.size(v["compute"]).get("usd_hour", 0) > 0:
            raise err(f"the {label} plan runs on the free compute size only, not {v['compute']!r}")
    if v["disk_gb"] is not None and v["disk_gb"] <= 0:
        raise ParameterError(f"disk_gb must be positive, got {v['disk_gb']}")


def check_parameters(values: dict[str, Any], config: Any, target: Any) -> None:
    """cost-analysis's parameters as one bill configuration, before the run: a spend cap on a plan without one,
    add-ons on the Free plan, a paid compute size on Free are refused (exit 2) instead of failing in the kernel."""
    from .pricing import load  # noqa: PLC0415

    resolve(load(config, target), target, values)

