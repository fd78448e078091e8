"""`[notify.NAME]` in opsbook.toml, validated. Secrets (a webhook URL, an SMTP password) come from the
environment (`*_env`) or from a file only the runner may read (`*_file`, see secrets.py)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.errors import ConfigError
from .secrets import SECRETS, secret_path

EVENTS = ("failed", "critical", "done")
KINDS = ("webhook", "email")
COMMON_KEYS = {"kind", "on", "report_url_prefix", "timeout_s", "retries", "description", "repeat_every"}
KIND_KEYS = {"webhook": {"url_env", "url_file", "format"},
             "email": {"to", "smtp", "from", "user_env", "user_file", "password_env", "password_file", "starttls",
                       "attach_html", "attach", "max_attach_mb", "ca_file"}}
ATTACH = ("html", "pdf", "none")
# what each e-mail key holds (docs/schedules-and-notifications.md shows them; errors name them)
EMAIL_HELP = {"ca_file": "PEM file of the CA that signed a private relay's certificate, instead of the system's "
                         "CAs (relative to opsbook.toml); the certificate and host name are verified either way"}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d|w)\s*$")  # as `reports prune --older-than` reads them
DURATION_S = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
DEFAULT_TIMEOUT_S = 10
DEFAULT_RETRIES = 2  # tries after the first, 1 s and 2 s later: a notifier must never hold a scheduled run up long


@dataclass(frozen=True)
class Notifier:
    name: str
    kind: str
    on: tuple[str, ...] = ("failed", "critical")
    report_url_prefix: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    options: dict[str, Any] = field(default_factory=dict)
    repeat_every_s: float | None = None  # a message about only standing findings at most this often; None: never

    def wants(self, events: set[str]) -> bool:
        return bool(events & set(self.on))


def load_notifiers(config) -> dict[str, Notifier]:
    """{name: Notifier} from `[notify.NAME]` tables; a top-level `[notify] report_url_prefix` applies to all."""
    raw = config.raw.get("notify", {})
    if not isinstance(raw, dict):
        raise ConfigError("[notify] must hold tables [notify.NAME]")
    prefix = raw.get("report_url_prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise ConfigError("[notify] report_url_prefix must be a string (a URL)")
    out = {}
    for name, t in raw.items():
        if name == "report_url_prefix":
            continue
        if not isinstance(t, dict):
            raise ConfigError(f"[notify.{name}] must be a table with kind = \"webhook\" or \"email\"")
        out[name] = _one(name, t, prefix, getattr(config, "base", None))
    return out


def _one(name: str, t: dict[str, Any], prefix: str | None, base: Path | None = None) -> Notifier:
    where = f"notifier {name!r}"
    kind = t.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "webhook" and "url" in t:
        raise ConfigError(f"{where}: a webhook URL is a secret: put it in an environment variable named by url_env "
                          "or in a file (mode 0600) named by url_file")
    if kind == "email" and ("password" in t or "user" in t):
        raise ConfigError(f"{where}: SMTP credentials come from the environment (user_env, password_env) or from "
                          "files (mode 0600) named by user_file, password_file")
    unknown = sorted(set(t) - COMMON_KEYS - KIND_KEYS[kind])
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} for kind {kind!r}; known: "
                          f"{', '.join(sorted(COMMON_KEYS | KIND_KEYS[kind]))}")
    on = t.get("on", ["failed", "critical"])
    if not isinstance(on, list) or not on or any(e not in EVENTS for e in on):
        raise ConfigError(f"{where}: on must be a list of {', '.join(EVENTS)}")
    timeout, retries = t.get("timeout_s", DEFAULT_TIMEOUT_S), t.get("retries", DEFAULT_RETRIES)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= 120:
        raise ConfigError(f"{where}: timeout_s must be a number of seconds above 0 and at most 120")
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 5:
        raise ConfigError(f"{where}: retries must be an integer from 0 to 5")
    options = {k: v for k, v in t.items() if k in KIND_KEYS[kind]}
    for env_key, file_key, _, label in SECRETS[kind].values():
        if env_key in t and file_key in t:
            raise ConfigError(f"{where}: give {env_key} or {file_key} for {label}, not both")
        if file_key in t:
            options[file_key] = secret_path(t[file_key], base, where, file_key)
    if kind == "webhook":
        env = t.get("url_env")
        if "url_file" not in t and (not isinstance(env, str) or not ENV_NAME.match(env)):
            raise ConfigError(f"{where}: url_env must name the environment variable that holds the webhook URL "
                              "(or url_file a file, mode 0600, that holds it)")
        if t.get("format", "slack") not in ("slack", "json"):
            raise ConfigError(f"{where}: format must be \"slack\" (Slack-compatible text) or \"json\"")
    else:
        to = t.get("to")
        to = [to] if isinstance(to, str) else to
        if not isinstance(to, list) or not to or not all(isinstance(a, str) and EMAIL.match(a) for a in to):
            raise ConfigError(f"{where}: to must be a list of e-mail addresses")
        options["to"] = to
        smtp = t.get("smtp")
        if not isinstance(smtp, str) or not re.fullmatch(r"[^\s:]+(:\d{1,5})?", smtp):
            raise ConfigError(f"{where}: smtp must be \"host\" or \"host:port\"")
        for key in ("user_env", "password_env"):
            if key in t and not (isinstance(t[key], str) and ENV_NAME.match(t[key])):
                raise ConfigError(f"{where}: {key} must name an environment variable")
        if t.get("starttls", "auto") not in ("auto", True, False):
            raise ConfigError(f"{where}: starttls must be true, false or \"auto\"")
        if "from" in t:
            options["from"] = _sender(t["from"], where)
        if not isinstance(t.get("attach_html", False), bool):
            raise ConfigError(f"{where}: attach_html must be true or false")
        if "attach" in t and "attach_html" in t:
            raise ConfigError(f"{where}: give attach (\"html\", \"pdf\" or \"none\"), not attach_html as well")
        attach = t.get("attach", "html" if t.get("attach_html", True) else "none")
        if attach not in ATTACH:
            raise ConfigError(f"{where}: attach must be \"html\" (the report, opening alone), \"pdf\" or \"none\"")
        options["attach"] = attach
        mb = t.get("max_attach_mb", 20)
        if not isinstance(mb, (int, float)) or isinstance(mb, bool) or not 0 < mb <= 100:
            raise ConfigError(f"{where}: max_attach_mb must be a number of megabytes above 0 and at most 100")
        if "ca_file" in t:
            options["ca_file"] = _ca_file(t["ca_file"], base, where)
    url_prefix = t.get("report_url_prefix", prefix)
    if url_prefix is not None and not isinstance(url_prefix, str):
        raise ConfigError(f"{where}: report_url_prefix must be a string (a URL)")
    return Notifier(name, kind, tuple(on), url_prefix, float(timeout), retries, options,
                    _repeat_every(t.get("repeat_every"), where))


def _repeat_every(value: Any, where: str) -> float | None:
    """`repeat_every = "7d"`: seconds; absent (or "never"): None, a standing finding is not repeated at all."""
    if value is None or value == "never":
        return None
    m = DURATION.match(value) if isinstance(value, str) else None
    if not m or float(m.group(1)) <= 0:
        _bad_repeat(where)
    return float(m.group(1)) * DURATION_S[m.group(2)]


def _bad_repeat(where: str) -> None:
    raise ConfigError(f"{where}: repeat_every must be a duration such as \"7d\", \"12h\" or \"2w\" (or \"never\", "
                      "the default: a standing finding is told again only when something changes)")


def _sender(value: Any, where: str) -> str:
    """`from`: an address, or `Name <address>`, as one clean header value."""
    from email.utils import formataddr, parseaddr  # noqa: PLC0415

    name, addr = parseaddr(value) if isinstance(value, str) and "\n" not in value and "\r" not in value else ("", "")
    if not EMAIL.match(addr or ""):
        raise ConfigError(f"{where}: from must be an e-mail address, or \"Name <address>\"")
    return formataddr((name, addr)) if name else addr


def _ca_file(value: Any, base: Path | None, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: ca_file must be the path of a PEM file: {EMAIL_HELP['ca_file']}")
    p = Path(value).expanduser()
    p = p if p.is_absolute() or base is None else base / p
    if not p.is_file():
        raise ConfigError(f"{where}: ca_file: no such file {str(p)!r} ({EMAIL_HELP['ca_file']})")
    return str(p)
