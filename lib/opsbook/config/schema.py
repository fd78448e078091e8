"""The opsbook.toml schema: every key a section or a target may hold, its type and its bound, checked in one place."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..core.errors import ConfigError, ParameterError

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Key:
    """One key: its TOML type, an optional extra check, and whether it is a path (resolved against the file)."""

    type: str  # str, bool, number, list[str], table, tables (table of tables), tables[] (array of tables)
    check: Callable[[Any, str], None] | None = None
    path: bool = False
    help: str = ""


def _positive(value: Any, what: str) -> None:
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{what} must be a positive number, got {value!r}")


def _env_name(value: str, what: str) -> None:
    if not ENV_NAME.fullmatch(value):
        raise ConfigError(f"{what} must name an environment variable (letters, digits, _), got {value!r}")


def _words(pattern: re.Pattern, kind: str) -> Callable[[list[str], str], None]:
    def check(values: list[str], what: str) -> None:
        for v in values:
            if not pattern.fullmatch(v):
                raise ConfigError(f"{what}: {v!r} is not a valid {kind}")
    return check


def _schemas(values: list[str], what: str) -> None:
    for v in values:
        if not v or "\x00" in v:
            raise ConfigError(f"{what}: {v!r} is not a schema name")


def _freshness(value: dict, what: str) -> None:
    from .bounds import check_freshness  # noqa: PLC0415

    try:
        check_freshness(value, what)
    except ParameterError as e:
        raise ConfigError(str(e)) from None


def _addons(value: dict, what: str) -> None:
    from .billing import check_addons  # noqa: PLC0415

    check_addons(value, what)


LIMIT_KEYS = ("database_size_bytes", "disk_bytes", "storage_bytes", "mau", "max_connections", "pooler_max_clients")


def _limits(value: dict, what: str) -> None:
    """Plan-limit overrides (opsbook.config.plan_limits): known names, positive numbers; spend_cap true or false."""
    for key, v in value.items():
        if key == "spend_cap":
            if not isinstance(v, bool):
                raise ConfigError(f"{what}.spend_cap must be true or false, got {v!r}")
            continue
        if key not in LIMIT_KEYS:
            raise ConfigError(f"{what}: unknown limit {key!r}; known: {', '.join(LIMIT_KEYS)}, spend_cap")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{what}.{key} must be a number, got {v!r}")
        _positive(v, f"{what}.{key}")


def _thresholds(value: dict, what: str) -> None:
    for check_id, layer in value.items():
        if not isinstance(layer, dict):
            raise ConfigError(f'{what} must hold tables keyed by check id, e.g. [{what}."activity.long_running"]')


TARGET: dict[str, Key] = {
    "dsn": Key("str", help="a libpq connection string or URL, without password"),
    "dsn_env": Key("str", _env_name, help="an environment variable holding the DSN"),
    "service": Key("str", help="a libpq service name (~/.pg_service.conf)"),
    "description": Key("str"),
    "plan": Key("str", help="Supabase plan: one of the price list's plans"),
    "compute": Key("str", help="Supabase compute size: one of the price list's sizes"),
    "thresholds": Key("tables", _thresholds, help="threshold overrides keyed by check id"),
    "freshness": Key("tables", _freshness, help="freshness rules keyed by table name"),
    "scratch": Key("bool", help="a restore server opsbook may create scratch databases on"),
    "api_schemas": Key("list[str]", _schemas, help="schemas the Data API exposes"),
    "tags": Key("list[str]", _words(TAG, "tag"), help="labels for `opsbook fleet --tag`"),
    "backups": Key("str", path=True, help="folder (or file) of this target's dumps"),
    "log_path": Key("str", path=True, help="the server log file or folder"),
    "usage_csv": Key("str", path=True, help="a usage CSV exported from the Supabase dashboard"),
    "spend_cap": Key("bool"),
    "disk_gb": Key("number", _positive, help="provisioned disk in GB"),
    "addons": Key("table", _addons, help="Supabase add-ons: pitr_days, ipv4, custom_domain, ..."),
    "pricing": Key("table", help="price-list overrides for this target (checked by the price list)"),
    "limits": Key("table", _limits, help="plan-limit overrides: database_size_bytes, max_connections, ..."),
}

SECTIONS: dict[str, dict[str, Key] | str] = {
    "targets": "tables",
    "history": {"url": Key("str", help="SQLAlchemy URL of the snapshot store"),
                "snapshot_every": Key("str", help="how often the installed timer snapshots (opsbook.schedule.timers)"),
                "watch_every": Key("str", help="set: the installed timer runs `opsbook watch` at this interval")},
    "reports": {"dir": Key("str", path=True, help="where reports are written")},
    "thresholds": "tables",
    "pricing": "table",  # checked by opsbook.config.pricing when a price list is loaded
    "schedules": "tables|tables[]",  # [[schedules]] or [schedules.NAME]: checked by the scheduler
    "notify": "table",  # checked by the notifiers
    "fleet": {  # a tls:// Dask scheduler's certificates (opsbook.fleet.wire); paths resolve against this file
        "tls_ca_file": Key("str", path=True, help="CA certificate(s) the cluster's certificates are signed by (PEM)"),
        "tls_cert": Key("str", path=True, help="this client's certificate, signed by that CA (PEM)"),
        "tls_key": Key("str", path=True, help="this client's private key (PEM, readable by its owner only)"),
    },
}


SHAPES = {"targets": "a table of named targets, e.g. [targets.prod]",
          "thresholds": 'a table of tables keyed by check id, e.g. [thresholds."activity.long_running"]'}


def check_top(raw: dict[str, Any], where: str) -> None:
    """Unknown sections and sections of the wrong shape are refused with the known ones named."""
    for name, value in raw.items():
        spec = SECTIONS.get(name)
        if spec is None:
            raise ConfigError(f"{where}: unknown section or key {name!r}; known: {', '.join(SECTIONS)}")
        shape = spec if isinstance(spec, str) else "table"
        if name in SHAPES and not _ok(value, shape):
            raise ConfigError(f"{where}: [{name}] must be {SHAPES[name]}")
        _type(value, shape, f"[{name}]", where)
        if isinstance(spec, dict):
            for key, v in value.items():
                if key not in spec:
                    raise ConfigError(f"{where}: unknown key {key!r} in [{name}]; known: {', '.join(spec)}")
                _type(v, spec[key].type, f"{name}.{key}", where)


def check_target(name: str, t: dict[str, Any], where: str) -> None:
    """Each key of [targets.NAME]: known, of its type, within its bound."""
    for key, value in t.items():
        spec = TARGET.get(key)
        if spec is None:
            close = _closest(key, TARGET)
            hint = f" (did you mean {close!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r} in [targets.{name}]{hint}; known: {', '.join(TARGET)}")
        what = f"targets.{name}.{key}"
        _type(value, spec.type, what, where)
        if spec.check is not None:
            try:
                spec.check(value, what)
            except ConfigError as e:
                raise ConfigError(f"{where}: {e}") from None


def resolve_paths(t: dict[str, Any], base: Path) -> dict[str, Any]:
    """Path-valued keys made absolute against the configuration file's folder (~ expanded)."""
    out = dict(t)
    for key, spec in TARGET.items():
        if spec.path and isinstance(out.get(key), str) and out[key]:
            p = Path(out[key]).expanduser()
            out[key] = str(p if p.is_absolute() else base / p)
    return out


def _type(value: Any, kind: str, what: str, where: str) -> None:
    if not _ok(value, kind):
        words = {"str": "a string", "bool": "true or false", "number": "a number", "list[str]": "a list of strings",
                 "table": "a table", "tables": "a table of tables", "tables[]": "an array of tables ([[...]])",
                 "tables|tables[]": "an array of tables ([[...]]) or a table of tables"}
        raise ConfigError(f"{where}: {what} must be {words[kind]}, got {_shown(value)}")


def _ok(value: Any, kind: str) -> bool:
    return {
        "str": lambda v: isinstance(v, str) and "\x00" not in v,
        "bool": lambda v: isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "table": lambda v: isinstance(v, dict),
        "tables": lambda v: isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()),
        "tables[]": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
        "tables|tables[]": lambda v: _ok(v, "tables") or _ok(v, "tables[]"),
    }[kind](value)


def _closest(key: str, known: dict[str, Any]) -> str | None:
    import difflib  # noqa: PLC0415

    found = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    return found[0] if found else None


def _shown(value: Any, limit: int = 60) -> str:
    s = repr(value)
    return s if len(s) <= limit else s[: limit - 4] + "...'"
