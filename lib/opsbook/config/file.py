"""opsbook.toml: targets, thresholds, history store, reports folder."""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..core.errors import ConfigError, UnknownTarget
from ..core.redact import secret_keys

DEMO_TARGET = "demo"
DEMO_DATABASE = "demo"
# Freshness rules for the demo target (the shape of opsbook.toml's [targets.NAME.freshness]): the scraper's tables
# are 9 hours stale, the ingest and job tables fresh to the minute.
DEMO_FRESHNESS: dict[str, dict] = {
    "public.scraping_sessions": {"column": "started_at", "max_age_hours": 4},
    "public.vehicle_listings": {"column": "created_at", "max_age_hours": 4},
    "public.metrics": {"column": "created_at", "max_age_hours": 1},
    "public.automation_jobs": {"column": "created_at", "max_age_hours": 1},
}
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
        """The libpq connection string; for `dsn_env`, read from the environment now. (The embedded demo's comes
        from its server: database.session.conninfo_of(target) answers for every target.)"""
        if self.dsn_env:
            value = os.environ.get(self.dsn_env)
            if not value:
                raise ConfigError(f"target {self.name!r}: environment variable {self.dsn_env} is not set")
            parse_dsn(value, f"target {self.name!r}: the DSN in {self.dsn_env}")
            return value
        if self.dsn:
            return self.dsn
        if self.service:
            return f"service={self.service}"
        if self.embedded:  # the server's socket and port are the database layer's: database.session.conninfo_of
            raise ConfigError(f"target {self.name!r} is the embedded demo server: ask database.session.conninfo_of")
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
    base: Path | None = None  # the folder relative paths were resolved against

    def portable_raw(self) -> dict[str, Any]:
        """`raw` with every path made absolute, so a copy written elsewhere (for a kernel) means the same."""
        from .schema import resolve_paths  # noqa: PLC0415

        raw = {**self.raw, "reports": {**self.raw.get("reports", {}), "dir": str(Path(self.reports_dir).absolute())}}
        if self.raw.get("history", {}).get("url"):  # else the default, beside the (now absolute) reports folder
            raw["history"] = {**self.raw["history"], "url": self.history_url}
        if self.base is not None and isinstance(raw.get("targets"), dict):
            raw["targets"] = {n: _pricing_file(resolve_paths(t, self.base), self.base)
                              for n, t in raw["targets"].items()}
        return _pricing_file(raw, self.base) if self.base is not None else raw


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
    """--config, else $OPSBOOK_CONFIG, else ./opsbook.toml, else the opsbook.toml of opsbook's home (the project
    checkout, so a kernel in runbooks/ finds the same file as `opsbook` run from the checkout; $OPSBOOK_HOME instead
    when set, as for reports/ and the history store), else None (built-in)."""
    if explicit:
        return Path(explicit)
    if os.environ.get("OPSBOOK_CONFIG"):
        return Path(os.environ["OPSBOOK_CONFIG"])
    from .paths import HOME_ENV, project_checkout  # noqa: PLC0415

    home = Path(os.environ[HOME_ENV]).expanduser() if os.environ.get(HOME_ENV) else project_checkout()
    for folder in (Path.cwd(), home):
        if folder is not None and (folder / "opsbook.toml").is_file():
            return folder / "opsbook.toml"
    return None


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
    """A validated Config. Relative paths resolve against the file's folder; without a file, against
    `paths.builtin_home()` (the project checkout or $OPSBOOK_HOME), never the current folder."""
    from . import schema  # noqa: PLC0415
    from .paths import builtin_home  # noqa: PLC0415

    where = str(path) if path else "built-in configuration"
    path = Path(path).absolute() if path else None
    base = path.parent if path else builtin_home()
    schema.check_top(raw, where)
    targets_raw = raw.get("targets", {})

    targets = {DEMO_TARGET: Target(DEMO_TARGET, plan="pro", compute="micro", freshness=dict(DEMO_FRESHNESS),
                                   description="the embedded demo database")}
    for name, t in targets_raw.items():
        if not TARGET_NAME.fullmatch(name) or "--" in name:
            raise ConfigError(f"{where}: target name {name!r} must be letters, digits, _ and single - "
                              "(it becomes part of report file names)")
        schema.check_target(name, t, where)
        targets[name] = _target(name, schema.resolve_paths(t, base), where, targets.get(name))
    reports = Path(raw.get("reports", {}).get("dir", "reports")).expanduser()
    reports_dir = reports if reports.is_absolute() else base / reports
    url = history_url(raw.get("history", {}).get("url"), reports_dir, base, where)
    thresholds = raw.get("thresholds", {})
    _check_thresholds(thresholds, where, "thresholds")
    config = Config(path=path, targets=targets, history_url=url, reports_dir=reports_dir, thresholds=thresholds,
                    raw=raw, base=base)
    for t in targets.values():
        _check_plan(config, t, where)
    return config


def history_url(url: Any, reports_dir: Path, base: Path, where: str) -> str:
    """The store's SQLAlchemy URL: the default beside the reports, or [history] url with a relative SQLite path
    made absolute against `base`; its folder must exist and its driver must be installed."""
    if not url:
        return f"sqlite:///{reports_dir / 'history.sqlite'}"
    url = str(url)
    if "://" not in url:
        raise ConfigError(f"{where}: [history] url {url!r} is not an SQLAlchemy URL (e.g. sqlite:///history.sqlite)")
    secret = url_secret(url)
    if secret:
        raise ConfigError(f"{where}: [history] url has a password in {secret}; leave it out and let libpq find it "
                          "(~/.pgpass, PGPASSWORD, passfile=)")
    scheme, rest = url.split("://", 1)
    dialect = scheme.split("+", 1)[0]
    if dialect == "sqlite":
        file, q, query = rest.removeprefix("/").partition("?")
        if file and file != ":memory:":
            p = Path(file).expanduser()
            p = p if p.is_absolute() else base / p
            if not p.parent.is_dir():
                raise ConfigError(f"{where}: [history] url: folder {p.parent} does not exist; create it first "
                                  "(opsbook does not create the folders a configuration names)")
            url = f"{scheme}:///{p}{q}{query}"
        if scheme not in ("sqlite", "sqlite+pysqlite"):
            _check_driver(url, where)
    elif scheme != "postgresql+psycopg":
        _check_driver(url, where)
    return url


# User info as SQLAlchemy reads it (sqlalchemy.engine.url._parse_url): up to the first @, even across a /
_SA_USERINFO = re.compile(r"[\w+]+://[^:/]*:([^@]*)@")


def url_secret(url: str) -> str | None:
    """Where a URL holds a password, named without it ("its user info", "its query parameter 'sslpassword'"),
    or None: the user info as urllib or SQLAlchemy read it, or a query parameter whose name (decoded, any case)
    holds "password", as libpq's URL and SQLAlchemy's psycopg dialect pass them to the server."""
    m = _SA_USERINFO.match(url)
    if urlsplit(url).password or (m and m.group(1)):
        return "its user info"
    query = url.partition("?")[2]
    for key, value in parse_qsl(query, keep_blank_values=True):
        if "password" in key.lower() and value:
            return f"its query parameter {key!r}"
    return None


def _check_driver(url: str, where: str) -> None:
    """The URL's SQLAlchemy dialect and its database driver can be imported here."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - only for URLs other than the two built in

    try:
        make_url(url).get_dialect().import_dbapi()
    except Exception as e:  # noqa: BLE001 - NoSuchModuleError, ImportError, ArgumentError: all one answer
        scheme = url.split("://", 1)[0]
        raise ConfigError(f"{where}: [history] url uses {scheme}://, whose driver is not installed here "
                          f"({type(e).__name__}); use sqlite:///PATH or postgresql+psycopg://...") from None


def _check_plan(config: Config, t: Target, where: str) -> None:
    """A configured plan and compute size are ones the target's price list knows."""
    if not (t.plan or t.compute) or (t.name == DEMO_TARGET and not config.raw.get("targets", {}).get(t.name)):
        return
    from .pricing import load as load_prices  # noqa: PLC0415 - only when a target names a plan

    prices = load_prices(config, t)
    if t.plan and t.plan not in prices.plans():
        raise ConfigError(f"{where}: targets.{t.name}.plan {t.plan!r} is not a plan of the price list; known: "
                          f"{', '.join(prices.plans())}")
    if t.compute and t.compute not in prices.sizes():
        raise ConfigError(f"{where}: targets.{t.name}.compute {t.compute!r} is not a compute size of the price "
                          f"list; known: {', '.join(prices.sizes())}")


def _target(name: str, t: dict[str, Any], where: str, base: Target | None) -> Target:
    sources = [k for k in ("dsn", "dsn_env", "service") if t.get(k)]
    if len(sources) > 1:
        raise ConfigError(f"{where}: target {name!r} sets {' and '.join(sources)}; give exactly one")
    if not sources and name != DEMO_TARGET:
        raise ConfigError(f"{where}: target {name!r} needs one of dsn, dsn_env or service")
    if t.get("dsn"):
        if secret_keys(parse_dsn(t["dsn"], f"{where}: target {name!r}: its dsn")):
            raise ConfigError(f"{where}: target {name!r} has a password in its dsn; use ~/.pgpass, PGPASSWORD "
                              "or dsn_env instead")
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


def _pricing_file(table: dict[str, Any], base: Path) -> dict[str, Any]:
    """`pricing.file` of a section made absolute (opsbook.config.pricing reads it relative to the config)."""
    pricing = table.get("pricing")
    if isinstance(pricing, dict) and isinstance(pricing.get("file"), str) and pricing["file"]:
        p = Path(pricing["file"]).expanduser()
        return {**table, "pricing": {**pricing, "file": str(p if p.is_absolute() else base / p)}}
    return table
