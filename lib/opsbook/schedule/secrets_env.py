"""The env file `schedule install` writes for a timer: the notifiers' `*_env` variables, taken from the installing
shell, in a file of mode 0600 that the crontab line sources and a systemd service reads (`EnvironmentFile=`).

One format serves both readers: `NAME="value"` with `\\`, `"`, `$` and `` ` `` escaped by a backslash, which sh
(after `set -a`) and systemd's EnvironmentFile parser read the same. Only what the schedules' notifiers name goes
in; a value is never printed (errors name the variable).
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import UsageError
from .notify.secrets import check_files, env_variables
from .notify.spec import load_notifiers
from .spec import load_schedules

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ESCAPE = re.compile(r'([\\"$`])')  # what a backslash must escape inside double quotes, for sh and systemd


def _escaped(value: str) -> str:
    return ESCAPE.sub(r"\\\1", value)


def env_folder(user: bool) -> Path:
    """Where the installer keeps the env files: beside the user's units (~/.config/opsbook), or /etc/opsbook."""
    if user:
        return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "opsbook"
    return Path("/etc/opsbook")


@dataclass
class EnvFile:
    path: Path
    values: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        lines = ["# written by `opsbook schedule install` (mode 0600): the notifiers' variables for the timer"]
        lines += [f'{k}="{_escaped(v)}"' for k, v in sorted(self.values.items())]
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        """Write the file (mode 0600 from its creation, replaced in one step); with no variables, remove any file
        an earlier install left, so no secret stays behind that the configuration no longer names."""
        if not self.values:
            self.path.unlink(missing_ok=True)
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}-", suffix=".tmp")
        except OSError as e:
            raise UsageError(f"cannot write the env file {self.path}: {e.strerror}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp creates it 0600
                f.write(self.text())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def remove(kind: str, *, user: bool) -> Path | None:
        path = env_folder(user) / f"schedule-{kind}.env"
        if path.is_file() or path.is_symlink():
            path.unlink()
            return path
        return None


def env_file_for(config, kind: str, *, user: bool) -> EnvFile:
    """The env file a `kind` timer needs for the schedules' notifiers (no variables: none needed). Refused with a
    one-line error, nothing installed: a named variable unset in this shell, a value that is not one line, a
    secret file that is missing or readable by others (ConfigError)."""
    used = sorted({name for s in load_schedules(config) for name in s.notify})
    notifiers = load_notifiers(config)
    chosen = [notifiers[name] for name in used if name in notifiers]
    check_files(chosen)
    path = env_folder(user) / f"schedule-{kind}.env"
    values: dict[str, str] = {}
    for var, name, key in env_variables(chosen):
        value = os.environ.get(var, "")
        if not value:
            if key is None:
                continue  # a default variable (OPSBOOK_SMTP_USER, ...) is used only when set
            raise UsageError(f"notifier {name!r}: {key} names {var}, which is not set in this shell: set it and "
                             f"install again (it is copied into {path}, mode 0600), or use a file instead "
                             f"({key[:-4]}_file); nothing installed")
        if CONTROL.search(value):
            raise UsageError(f"notifier {name!r}: {var} holds a newline or control character, which cannot go "
                             "into the env file; nothing installed")
        values[var] = value
    return EnvFile(path, values)
