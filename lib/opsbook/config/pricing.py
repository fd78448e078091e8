"""The price list: the built-in file or the user's, opsbook.toml overrides applied, every figure with its source."""
from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError

BUILTIN = Path(__file__).resolve().parent / "pricing-supabase-2026-11-21.toml"
META_KEYS = {"source", "as_of", "note"}
# Where an override may add a whole new table (a contract's custom plan, a compute size, an RDS instance).
OPEN_TABLES = {"plans", "compute", "rds.instances"}
_QUOTA_KEY = re.compile(r"^quota_[a-z0-9_]+$")


@dataclass(frozen=True)
class Figure:
    """One number of the price list and where it comes from."""

    path: str
    value: float
    source: str
    as_of: str
    origin: str = "price file"

    def cite(self) -> str:
        return f"{self.source}, as of {self.as_of}"


@dataclass
class PriceList:
    """Nested plain values (`data`) plus each figure's provenance (`figures`, keyed by dotted path)."""

    data: dict[str, Any]
    figures: dict[str, Figure]
    origin: str
    overrides: list[Figure] = field(default_factory=list)

    # -------------------------------------------------------------- reading
    def get(self, path: str, default: Any = ...) -> Any:
        node: Any = self.data
        for part in _split(path):
            if not isinstance(node, dict) or part not in node:
                if default is ...:
                    raise KeyError(f"price list has no {path!r}")
                return default
            node = node[part]
        return node

    def figure(self, path: str) -> Figure:
        return self.figures[path]

    def cite(self, *paths: str) -> str:
        """'S9, as of 2026-08-26' for one or more figures (distinct citations joined)."""
        seen = []
        for p in paths:
            if p in self.figures and self.figures[p].cite() not in seen:
                seen.append(self.figures[p].cite())
        return "; ".join(seen)

    @property
    def id(self) -> str:
        return str(self.get("meta.id", "custom"))

    @property
    def title(self) -> str:
        return str(self.get("meta.title", self.id))

    @property
    def researched(self) -> str:
        return str(self.get("meta.researched", "unknown date"))

    @property
    def hours_per_month(self) -> float:
        return float(self.get("meta.hours_per_month", 730))

    def plans(self) -> dict[str, dict[str, Any]]:
        return self.get("plans", {})

    def plan(self, name: str) -> dict[str, Any]:
        try:
            return self.plans()[name]
        except KeyError:
            raise ConfigError(f"plan {name!r} is not in the price list; known: {', '.join(self.plans())}") from None

    def items(self) -> dict[str, dict[str, Any]]:
        return self.get("items", {})

    def sizes(self) -> dict[str, dict[str, Any]]:
        """Compute sizes, cheapest first."""
        return dict(sorted(self.get("compute", {}).items(), key=lambda kv: (kv[1].get("usd_hour", 0),
                                                                             kv[1].get("ram_gb", 0))))

    def size(self, name: str) -> dict[str, Any]:
        try:
            return self.sizes()[name]
        except KeyError:
            raise ConfigError(f"compute size {name!r} is not in the price list; known: "
                              f"{', '.join(self.sizes())}") from None

    def describe(self) -> str:
        """One sentence for the report: which list, its date, and what was overridden."""
        text = f"{self.title} ({self.origin}; researched {self.researched})"
        if self.overrides:
            changes = ", ".join(f"{f.path} = {f.value:g} ({f.origin})" for f in self.overrides)
            text += f", with {len(self.overrides)} override{'s' * (len(self.overrides) > 1)}: {changes}"
        return text

    def sources(self) -> dict[str, str]:
        return dict(self.get("sources", {}))


# ------------------------------------------------------------------ loading
def _split(path: str) -> list[str]:
    """Dotted path to parts; a part may itself contain dots when quoted: rds.instances."db.t4g.micro"."""
    return [p.strip('"') for p in re.findall(r'"[^"]*"|[^.]+', path)]


def _join(*parts: str) -> str:
    return ".".join(f'"{p}"' if "." in p else p for p in parts)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _walk(table: dict[str, Any], prefix: str, source: str | None, as_of: str | None, origin: str,
          figures: dict[str, Figure], where: str) -> dict[str, Any]:
    """Plain values out of `table`; each number recorded as a Figure with the nearest source/as_of."""
    source = str(table.get("source", source)) if table.get("source", source) is not None else None
    as_of = str(table.get("as_of", as_of)) if table.get("as_of", as_of) is not None else None
    out: dict[str, Any] = {}
    for key, value in table.items():
        path = _join(*_split(prefix), key) if prefix else _join(key)
        if key in META_KEYS:
            out[key] = value
        elif isinstance(value, dict) and "value" in value:
            v = value["value"]
            if not _is_number(v):
                raise ConfigError(f"{where}: {path}.value must be a number, got {v!r}")
            src, date = value.get("source", source), value.get("as_of", as_of)
            if not src or not date:
                raise ConfigError(f"{where}: figure {path} has no {'source' if not src else 'as_of'}; every price "
                                  "needs both")
            figures[path] = Figure(path, v, str(src), str(date), origin)
            out[key] = v
        elif isinstance(value, dict):
            out[key] = _walk(value, path, source, as_of, origin, figures, where)
        elif _is_number(value):
            if not source or not as_of:
                raise ConfigError(f"{where}: figure {path} has no {'source' if not source else 'as_of'}; give the "
                                  "table a source and as_of, or the figure { value = ..., source = ..., as_of = ... }")
            figures[path] = Figure(path, value, source, as_of, origin)
            out[key] = value
        else:
            out[key] = value
    return out


def read_file(path: str | Path, origin: str | None = None) -> PriceList:
    """Load one price file; every figure must carry a source and an as_of."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"price file {p} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"price file {p} is not valid TOML: {e}") from None
    label = origin or ("built-in price file " + p.name if p == BUILTIN else f"price file {p}")
    figures: dict[str, Figure] = {}
    data = {}
    for key, value in raw.items():  # top-level tables carry their own source/as_of
        if key == "sources" or not isinstance(value, dict):
            data[key] = value
            continue
        data[key] = _walk(value, key, None, None, label, figures, str(p))
    for need in ("plans", "items", "compute"):
        if not data.get(need):
            raise ConfigError(f"price file {p} has no [{need}] table; see the built-in file for the shape")
    return PriceList(data, figures, label)


def apply_overrides(prices: PriceList, overrides: dict[str, Any], origin: str) -> PriceList:
    """A copy of `prices` with `overrides` (same shape as the file) applied; unknown keys are refused."""
    out = PriceList(copy.deepcopy(prices.data), dict(prices.figures), prices.origin, list(prices.overrides))
    body = {k: v for k, v in overrides.items() if k != "file"}
    source = str(body.pop("source", origin))
    as_of = str(body.pop("as_of", "not given"))
    _merge(out, out.data, body, "", source, as_of, origin, fresh=False)
    return out


def _merge(prices: PriceList, node: dict[str, Any], layer: dict[str, Any], prefix: str, source: str,
           as_of: str, origin: str, fresh: bool, shared: frozenset = frozenset()) -> None:
    """Merge one override table into `node`. A key the list lacks is refused (typos), unless the table is new,
    a sibling table has it (plans.enterprise.usd_month, like plans.pro's) or it is a quota_<plan>."""
    source = str(layer.get("source", source))
    as_of = str(layer.get("as_of", as_of))
    for key, value in layer.items():
        if key in ("source", "as_of"):
            continue
        path = _join(*_split(prefix), key) if prefix else key
        known = key in node
        if isinstance(value, dict) and "value" not in value:
            if not known and prefix not in OPEN_TABLES:
                raise ConfigError(f"{origin}: [{path}] is not in the price list; known under "
                                  f"{prefix or 'the top'}: {', '.join(sorted(node))}")
            siblings = frozenset(k for other in node.values() if isinstance(other, dict) for k in other)
            _merge(prices, node.setdefault(key, {}), value, path, source, as_of, origin, fresh or not known,
                   siblings)
            continue
        if not known and not (fresh or key in shared or _QUOTA_KEY.match(key)):
            raise ConfigError(f"{origin}: {path} is not in the price list; known keys here: "
                              f"{', '.join(sorted(k for k in node if not isinstance(node[k], dict)))}")
        if isinstance(value, dict):  # { value = ..., source = ..., as_of = ... }
            number, src, date = value["value"], str(value.get("source", source)), str(value.get("as_of", as_of))
        else:
            number, src, date = value, source, as_of
        if known and _is_number(node[key]) and not _is_number(number):
            raise ConfigError(f"{origin}: {path} must be a number, got {number!r}")
        node[key] = number
        if _is_number(number):
            fig = Figure(path, number, src, date, origin)
            prices.figures[path] = fig
            prices.overrides.append(fig)


def load(config: Any = None, target: Any = None) -> PriceList:
    """The price list for `target`: the built-in (or [pricing] file), then [pricing], then [targets.X.pricing]."""
    raw = getattr(config, "raw", None) or {}
    base = getattr(config, "base", None) or (Path(config.path).parent if getattr(config, "path", None) else Path.cwd())
    layers: list[tuple[dict[str, Any], str]] = []
    glob = raw.get("pricing", {})
    if not isinstance(glob, dict):
        raise ConfigError("opsbook.toml: [pricing] must be a table (file = ..., or figures to override)")
    layers.append((glob, "opsbook.toml [pricing]"))
    if target is not None:
        mine = target.extra.get("pricing", {})
        if not isinstance(mine, dict):
            raise ConfigError(f"opsbook.toml: [targets.{target.name}.pricing] must be a table")
        layers.append((mine, f"opsbook.toml [targets.{target.name}.pricing]"))
    path = BUILTIN
    for layer, _ in layers:  # the last `file` wins: a target may pin its own list
        if layer.get("file"):
            f = Path(str(layer["file"]))
            path = f if f.is_absolute() else base / f
    prices = read_file(path)
    for layer, origin in layers:
        if any(k != "file" for k in layer):
            prices = apply_overrides(prices, layer, origin)
    return prices
