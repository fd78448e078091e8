"""A notifier's secrets (a webhook URL, SMTP user and password): from an environment variable (`*_env`) or from a
file named in opsbook.toml (`*_file`, relative to it) that only the user running opsbook may read.

A secret is never printed: errors name the variable or the file, never the value.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from ...core.errors import ConfigError

# secret -> (its *_env key, its *_file key, the default variable when neither is given, what it is)
SECRETS = {"webhook": {"url": ("url_env", "url_file", None, "the webhook URL")},
           "email": {"user": ("user_env", "user_file", "OPSBOOK_SMTP_USER", "the SMTP user"),
                     "password": ("password_env", "password_file", "OPSBOOK_SMTP_PASSWORD", "the SMTP password")}}
MAX_BYTES = 64 * 1024


class SecretMissing(Exception):
    """A secret that must be there is not: the message names where it was looked for, never a value."""


def secret(n, what: str, *, required: bool) -> str:
    """The secret `what` ("url", "user", "password") of notifier `n`: from its `*_file` if configured, else from
    its `*_env` variable (or the default one); "" when optional and absent. Raises SecretMissing (a required
    variable unset) or ConfigError (a file that is missing, empty, or readable by others)."""
    env_key, file_key, default, label = SECRETS[n.kind][what]
    if file_key in n.options:
        return read_secret_file(n.options[file_key], f"notifier {n.name!r}: {file_key}")
    env = n.options.get(env_key, default)
    value = os.environ.get(env, "") if env else ""
    if not value and required:
        raise SecretMissing(f"environment variable {env} ({label}) is not set")
    return value


def read_secret_file(path: str, where: str) -> str:
    """The file's text without its trailing newline; the file must exist, belong to the user running opsbook and
    be readable by nobody else (mode 0600 or 0400), else a one-line ConfigError naming the file and its mode."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise ConfigError(f"{where}: cannot read {path} ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())  # the file opened, not a name that may change in between
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{where}: {path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if st.st_uid != os.geteuid():
            raise ConfigError(f"{where}: {path} (mode {mode:04o}) belongs to uid {st.st_uid}, not to uid "
                              f"{os.geteuid()} who runs opsbook: a secret file must be the runner's own")
        if mode & 0o077:
            raise ConfigError(f"{where}: {path} has mode {mode:04o}, readable by group or others: "
                              f"`chmod 600 {path}` (a secret file must be 0600 or 0400)")
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{where}: {path} is larger than {MAX_BYTES // 1024} KiB: not a secret")
    text = data.decode("utf-8", "replace").rstrip("\r\n")
    if not text.strip():
        raise ConfigError(f"{where}: {path} is empty")
    if "\n" in text or "\r" in text or "\x00" in text:
        raise ConfigError(f"{where}: {path} holds more than one line: a secret file holds the secret only")
    return text


def secret_path(value, base: Path | None, where: str, key: str) -> str:
    """A `*_file` value as an absolute path (relative to opsbook.toml's folder); the file itself is read (and its
    mode checked) when it is used, and by `schedule install`."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ConfigError(f"{where}: {key} must be the path of a file that holds the secret (relative to "
                          "opsbook.toml), readable only by you (mode 0600)")
    p = Path(value).expanduser()
    return str(p if p.is_absolute() or base is None else base / p)


def check_files(notifiers) -> None:
    """Read every configured secret file once (ConfigError when one is missing, empty or readable by others)."""
    for n in notifiers:
        for env_key, file_key, _, _ in SECRETS[n.kind].values():
            if file_key in n.options:
                read_secret_file(n.options[file_key], f"notifier {n.name!r}: {file_key}")


def env_variables(notifiers) -> list[tuple[str, str, str | None]]:
    """(variable, notifier, its `*_env` key or None for a default variable read only when set) for every secret of
    `notifiers` that comes from the environment; a secret that comes from a file needs no variable."""
    out = []
    for n in notifiers:
        for env_key, file_key, fallback, _ in SECRETS[n.kind].values():
            if file_key in n.options:
                continue
            if env_key in n.options:
                out.append((n.options[env_key], n.name, env_key))
            elif fallback:
                out.append((fallback, n.name, None))
    return out
