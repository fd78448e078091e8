"""opsbook.toml: targets, thresholds, history store, reports folder."""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, UnknownTarget

DEMO_TARGET = "demo"
DEMO_DATABASE = "demo"
TARGET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
TARGET_KEYS = {"dsn", "dsn_env", "service", "plan", "compute", "thresholds", "freshness", "description"}


@dataclass
class Target:
    """A database opsbook can diagnose, by name; never holds a password."""

    name: str
    dsn: str | None = None
    dsn_env: str | None = None
    service: str | None = None
    plan: str | None = None
    compute: str | None = None
    thresholds: dict[str, dict[str, Any]] = field(default_factory=dict)
    freshness: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # keys later runbooks read (add-ons, pricing, ...)

    @property
    def embedded(self) -> bool:
        return self.name == DEMO_TARGET and not (self.dsn or self.dsn_env or self.service)

    def conninfo(self) -> str:
        """The libpq connection string; for `dsn_env`, read from the environment now."""
        if self.dsn_env:
            value = os.environ.get(self.dsn_env)
            if not value:
                raise ConfigError(f"target {self.name!r}: environment variable {self.dsn_env} is not set")
            parse_dsn(value, f"target {self.name!r}: the DSN in {self.dsn_env}")
            refuse_transaction_pooler(value, f"target {self.name!r}")
            return value
        if self.dsn:
            return self.dsn
        if self.service:
            return f"service={self.service}"
        if self.embedded:
            from .embedded import default_server  # noqa: PLC0415 - only the demo needs it

            return default_server().conninfo(dbname=DEMO_DATABASE)
        raise ConfigError(f"target {self.name!r} has none of dsn, dsn_env or service")

    def display(self) -> str:
        """Where this target points, safe to print: no password, ever."""
        if self.dsn_env:
            return f"${self.dsn_env} -> {redact(os.environ.get(self.dsn_env, '(unset)'))}"
        if self.service:
            return f"service={self.service}"
        if self.embedded:
            return "embedded demo database"
        return redact(self.dsn or "")


@dataclass
class Config:
    path: Path | None
    targets: dict[str, Target]
    history_url: str
    reports_dir: Path
    thresholds: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def target(self, name: str) -> Target:
        try:
            return self.targets[name]
        except KeyError:
            raise UnknownTarget(name, sorted(self.targets)) from None

    def thresholds_for(self, check_id: str, target: Target | None = None) -> dict[str, Any]:
        """Config-file overrides for one check: global, then per target."""
        merged = dict(self.thresholds.get(check_id, {}))
        if target is not None:
            merged.update(target.thresholds.get(check_id, {}))
        return merged


def config_path(explicit: str | os.PathLike | None = None) -> Path | None:
    """--config, else $OPSBOOK_CONFIG, else ./opsbook.toml when present, else None (built-in)."""
    if explicit:
        return Path(explicit)
    if os.environ.get("OPSBOOK_CONFIG"):
        return Path(os.environ["OPSBOOK_CONFIG"])
    local = Path("opsbook.toml")
    return local if local.exists() else None


def load(path: str | os.PathLike | None = None) -> Config:
    """Read and validate the configuration; every problem is a ConfigError with one line."""
    p = config_path(path)
    raw: dict[str, Any] = {}
    if p is not None:
        try:
            raw = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {p} not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"config file {p} cannot be read: {e.__class__.__name__}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {p} is not valid TOML: {e}") from None
    return from_dict(raw, p)


def from_dict(raw: dict[str, Any], path: Path | None = None) -> Config:
    where = str(path) if path else "built-in configuration"
    base = path.parent if path else Path.cwd()
    targets_raw = raw.get("targets", {})
    if not isinstance(targets_raw, dict):
        raise ConfigError(f"{where}: [targets] must be a table of named targets")
    from .demo import FRESHNESS  # noqa: PLC0415 - plain data; the builders load lazily

    targets = {DEMO_TARGET: Target(DEMO_TARGET, plan="pro", compute="micro", freshness=dict(FRESHNESS),
                                   description="the embedded demo database")}
    for name, t in targets_raw.items():
        if not TARGET_NAME.fullmatch(name) or "--" in name:
            raise ConfigError(f"{where}: target name {name!r} must be letters, digits, _ and single - "
                              "(it becomes part of report file names)")
        if not isinstance(t, dict):
            raise ConfigError(f"{where}: [targets.{name}] must be a table")
        targets[name] = _target(name, t, where, targets.get(name))
    reports = raw.get("reports", {}).get("dir", "reports")
    reports_dir = (base / reports) if not Path(reports).is_absolute() else Path(reports)
    history = raw.get("history", {})
    if not isinstance(history, dict):
        raise ConfigError(f"{where}: [history] must be a table with a url")
    url = history.get("url") or f"sqlite:///{reports_dir / 'history.sqlite'}"
    if "://" not in str(url):
        raise ConfigError(f"{where}: [history] url {url!r} is not an SQLAlchemy URL")
    if urlsplit(str(url)).password:
        raise ConfigError(f"{where}: [history] url has a password; leave it out and let libpq find it "
                          "(~/.pgpass, PGPASSWORD)")
    thresholds = raw.get("thresholds", {})
    _check_thresholds(thresholds, where, "thresholds")
    return Config(path=path, targets=targets, history_url=str(url), reports_dir=reports_dir,
                  thresholds=thresholds, raw=raw)


def _target(name: str, t: dict[str, Any], where: str, base: Target | None) -> Target:
    for key in ("dsn", "dsn_env", "service", "plan", "compute", "description"):
        if key in t and not isinstance(t[key], str):
            raise ConfigError(f"{where}: targets.{name}.{key} must be a string")
    sources = [k for k in ("dsn", "dsn_env", "service") if t.get(k)]
    if len(sources) > 1:
        raise ConfigError(f"{where}: target {name!r} sets {' and '.join(sources)}; give exactly one")
    if not sources and name != DEMO_TARGET:
        raise ConfigError(f"{where}: target {name!r} needs one of dsn, dsn_env or service")
    if t.get("dsn"):
        if secret_keys(parse_dsn(t["dsn"], f"{where}: target {name!r}: its dsn")):
            raise ConfigError(f"{where}: target {name!r} has a password in its dsn; use ~/.pgpass, PGPASSWORD "
                              "or dsn_env instead")
        refuse_transaction_pooler(t["dsn"], f"{where}: target {name!r}")
    _check_thresholds(t.get("thresholds", {}), where, f"targets.{name}.thresholds")
    fresh = t.get("freshness", {})
    if not isinstance(fresh, dict):
        raise ConfigError(f"{where}: targets.{name}.freshness must be a table keyed by table name")
    known = {k: t[k] for k in TARGET_KEYS if k in t}
    extra = {k: v for k, v in t.items() if k not in TARGET_KEYS}
    if base is not None:  # [targets.demo] adjusts the built-in demo target
        merged = {**{k: getattr(base, k) for k in TARGET_KEYS}, **{k: v for k, v in known.items() if v}}
        return Target(name, **merged, extra={**base.extra, **extra})
    return Target(name, **known, extra=extra)


def _check_thresholds(th: Any, where: str, key: str) -> None:
    if not isinstance(th, dict) or not all(isinstance(v, dict) for v in th.values()):
        raise ConfigError(f'{where}: [{key}] must hold tables keyed by check id, e.g. [{key}."activity.long_running"]')


def parse_dsn(dsn: str, what: str) -> dict[str, str]:
    """libpq's reading of a connection string; an unparsable one is a ConfigError that never echoes it (libpq's
    own message quotes the offending part, which may be the password)."""
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415 - keep import time low

    try:
        return conninfo_to_dict(dsn)
    except Exception:
        raise ConfigError(f"{what} is not a valid libpq connection string (not shown: it may hold a password)") \
            from None


def secret_keys(parts: dict[str, str]) -> list[str]:
    """The keys of a parsed DSN that hold secrets: password, sslpassword, and any other *password*."""
    return [k for k, v in parts.items() if "password" in k and v]


# Supabase's transaction-mode pooler (Supavisor/PgBouncer on 6543) hands each statement to any server connection:
# session settings (read-only, timeouts) would not hold for our statements and would leak into the app's.
TRANSACTION_POOLER_PORT = "6543"


def refuse_transaction_pooler(dsn: str, what: str) -> None:
    parts = parse_dsn(dsn, what)
    if str(parts.get("port", "")) == TRANSACTION_POOLER_PORT:
        raise ConfigError(f"{what} points at a transaction-mode pooler (port 6543): opsbook needs a session of its "
                          "own for its read-only settings; use the direct connection (port 5432) or the session "
                          "pooler")


def redact(dsn: str) -> str:
    """A connection string with any password replaced by ***."""
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    if not dsn:
        return dsn
    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        return "(unparsable connection string)"
    for key in secret_keys(parts):
        parts[key] = "***"
    if "://" in dsn:  # keep the URL shape people recognise
        user = parts.get("user", "")
        pw = ":***" if parts.get("password") else ""
        host = parts.get("host", "")
        port = f":{parts['port']}" if parts.get("port") else ""
        rest = {k: v for k, v in parts.items() if k not in ("user", "password", "host", "port", "dbname")}
        q = ("?" + "&".join(f"{k}={v}" for k, v in rest.items())) if rest else ""
        return f"postgresql://{user}{pw}{'@' if user else ''}{host}{port}/{parts.get('dbname', '')}{q}"
    # key=value form: replace the value in place so the string keeps the shape its author wrote
    return re.sub(r"(\w*password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn)
