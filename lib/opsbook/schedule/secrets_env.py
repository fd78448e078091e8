"""The env file `schedule install` writes for a timer: the notifiers' `*_env` variables and the targets' `dsn_env`,
taken from the installing shell, in a file of mode 0600 (one per configuration) that the crontab lines source and
the systemd services read (`EnvironmentFile=`).

One format serves both readers: `NAME="value"` with `\\`, `"`, `$` and `` ` `` escaped by a backslash, which sh
(after `set -a`) and systemd's EnvironmentFile parser read the same. Only what the schedules' notifiers and the
configuration's targets name goes in; a value is never printed (errors name the variable).
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
        lines = ["# written by `opsbook schedule install` (mode 0600): the variables the timers' runs need"]
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
    def remove(kind: str, *, user: bool, cid: str | None) -> list[Path]:
        """Remove the `kind` env file of the configuration `cid` ("": an earlier opsbook's, named without an id;
        None: every configuration's and that one); the files removed."""
        folder = env_folder(user)
        paths = [env_path(kind, user=user, cid=cid)] if cid is not None else \
            ([*sorted(folder.glob(f"schedule-{kind}-*.env")), env_path(kind, user=user, cid="")]
             if folder.is_dir() else [])
        gone = []
        for path in paths:
            if path.is_file() or path.is_symlink():
                path.unlink()
                gone.append(path)
        return gone


def env_path(kind: str, *, user: bool, cid: str) -> Path:
    """schedule-KIND-ID.env: one per configuration, as its timers are (`schedule-KIND.env` without an id)."""
    return env_folder(user) / (f"schedule-{kind}-{cid}.env" if cid else f"schedule-{kind}.env")


def env_file_for(config, kind: str, *, user: bool, cid: str) -> EnvFile:
    """The env file a `kind` timer needs for the schedules' notifiers and the targets' `dsn_env` (no variables:
    none needed). Refused with a
    one-line error, nothing installed: a named variable unset in this shell, a value that is not one line, a
    secret file that is missing or readable by others (ConfigError)."""
    used = sorted({name for s in load_schedules(config) for name in s.notify})
    notifiers = load_notifiers(config)
    chosen = [notifiers[name] for name in used if name in notifiers]
    check_files(chosen)
    path = env_path(kind, user=user, cid=cid)
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
    for name, var in _dsn_variables(config):  # the timers' runs and snapshots connect with them
        value = os.environ.get(var, "")
        if not value:
            raise UsageError(f"target {name!r}: dsn_env names {var}, which is not set in this shell: set it and "
                             f"install again (it is copied into {path}, mode 0600), or give the target a service "
                             "or a dsn with ~/.pgpass; nothing installed")
        if CONTROL.search(value):
            raise UsageError(f"target {name!r}: {var} holds a newline or control character, which cannot go into "
                             "the env file; nothing installed")
        values[var] = value
    return EnvFile(path, values)


def _dsn_variables(config) -> list[tuple[str, str]]:
    """(target, variable) for the targets of the configuration file (what the timers' `snapshot --all` and
    schedules reach) whose DSN comes from the environment."""
    named = config.raw.get("targets") or {}
    return [(n, config.targets[n].dsn_env) for n in sorted(named)
            if n in config.targets and config.targets[n].dsn_env]
