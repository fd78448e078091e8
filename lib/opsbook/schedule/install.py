"""`schedule install`: the crontab line or systemd units that call `opsbook schedule run-due` every minute.

Every value written into them (paths, HOME, PATH) is checked first: a newline, carriage return, NUL or other
control character would start a crontab entry or a unit setting of its own, so it is refused (exit 2, naming
where the value came from) and nothing is written. What remains is quoted for sh, cron's `%` and systemd.

Secrets: cron hands its command a bare environment and a unit gets only what it says, so the variables the
notifiers name (`url_env`, `user_env`, `password_env`) go, from the installing shell, into an env file of mode 0600
(see secrets_env.py) that the crontab line sources and the service reads with `EnvironmentFile=`; a secret in a
file (`url_file`, ...) needs nothing more, as opsbook.toml names the file.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import OpsbookError, UsageError
from ..config.paths import atomic_write_text
from .secrets_env import EnvFile, env_file_for

MARKER = "# opsbook schedule run-due (managed by `opsbook schedule install`; remove with `opsbook schedule uninstall`)"
UNIT = "opsbook-schedule"
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_NAMES = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL"}
SYSTEMD_PLAIN = re.compile(r"[\w@+=:,./-]+", re.ASCII)  # needs no quotes nor escapes in a unit
LEGACY_LINES = 50  # an entry an earlier opsbook split over lines (see _legacy_entry) spans at most this many


def checked(value: str, key: str, where: str) -> str:
    """`value`, refused (UsageError naming `key`) when it holds a control character or is not text: it would not
    stay one crontab line or one unit setting."""
    m = CONTROL.search(value)
    if m:
        what = CONTROL_NAMES.get(m.group(), f"a control character ({m.group()!r})")
        raise UsageError(f"{key} contains {what}, which cannot go into {where}: refused, nothing installed "
                         f"(the value starts {value[:m.start()][:60]!r})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{key} is not valid UTF-8, which cannot go into {where}: refused, nothing installed") \
            from None
    return value


def opsbook_command(config_file: Path | None) -> list[tuple[str, str]]:
    """The absolute command a timer runs (this installation's opsbook, with the configuration in use), each word
    with the name of where it came from."""
    exe = Path(sys.argv[0]).resolve() if Path(sys.argv[0]).name == "opsbook" else None
    exe = exe or (Path(sys.executable).parent / "opsbook")
    cmd = [(str(exe), "the opsbook command's path")]
    if config_file is not None:
        cmd += [("--config", ""), (str(Path(config_file).absolute()), "the --config path")]
    return cmd + [("schedule", ""), ("run-due", "")]


def _cron_word(value: str) -> str:
    """`value` quoted for sh, with every `%` outside the quotes as `\\%`: cron turns an unescaped `%` into a
    newline and `\\%` into `%`, and a backslash of the value must never stand right before the escape."""
    return "\\%".join(shlex.quote(part) if part else "" for part in value.split("%")) or "''"


def log_file(config) -> Path:
    return Path(config.reports_dir).absolute() / "schedule.log"


def crontab_line(config, config_file: Path | None, env: EnvFile | None = None) -> str:
    """`* * * * * mkdir -p LOGDIR && HOME=.. PATH=.. opsbook ... schedule run-due >> LOG 2>&1 # marker`: cron hands
    the command to /bin/sh with a bare environment (HOME and PATH matter for ~/.pgpass and the client tools), the
    log's folder may not exist yet on a fresh machine, and `%` would be a newline to cron. With an env file (the
    notifiers' variables), `set -a && . ENVFILE 2>> LOG && set +a && ` comes before HOME: a missing file is said
    in the log."""
    where = "a crontab line"
    log = log_file(config)
    logdir = checked(str(log.parent), "[reports] dir", where)
    home = checked(str(Path.home()), "HOME (environment)", where)
    path = checked(os.environ.get("PATH", "/usr/bin:/bin"), "PATH (environment)", where)
    cmd = " ".join(_cron_word(checked(w, key, where) if key else w) for w, key in opsbook_command(config_file))
    source = ""
    if env is not None and env.values:
        envfile = checked(str(env.path), "the env file's path", where)
        source = f"set -a && . {_cron_word(envfile)} 2>> {_cron_word(str(log))} && set +a && "
    command = (f"mkdir -p {_cron_word(logdir)} && {source}HOME={_cron_word(home)} PATH={_cron_word(path)} {cmd} "
               f">> {_cron_word(str(log))} 2>&1")
    return f"* * * * * {command} {MARKER}"


def _systemd_word(value: str, *, variables: bool) -> str:
    """`value` as one word of a unit setting (systemd.syntax(7)): as is when plain, else double-quoted with
    backslash and double quote escaped, `%` doubled (specifiers) and, where the setting expands variables
    (ExecStart=), `$` doubled too."""
    if SYSTEMD_PLAIN.fullmatch(value):
        return value
    text = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{text.replace("$", "$$") if variables else text}"'


@dataclass
class Units:
    folder: Path
    service: str
    timer: str
    user: bool

    def files(self) -> dict[Path, str]:
        return {self.folder / f"{UNIT}.service": self.service, self.folder / f"{UNIT}.timer": self.timer}

    def enable_hint(self) -> str:
        flag = " --user" if self.user else ""
        return f"systemctl{flag} daemon-reload && systemctl{flag} enable --now {UNIT}.timer"


def units_folder(user: bool) -> Path:
    """~/.config/systemd/user for --user, else /etc/systemd/system."""
    if user:
        return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd" / "user"
    return Path("/etc/systemd/system")


def systemd_units(config, config_file: Path | None, *, user: bool, env: EnvFile | None = None) -> Units:
    folder = units_folder(user)
    where = "a systemd unit"
    environment_file = []
    if env is not None and env.values:  # one path, `%` doubled (a specifier otherwise); read before the start
        environment_file = [f"EnvironmentFile={checked(str(env.path), 'the env file path', where).replace('%', '%%')}"]
    exec_start = " ".join(_systemd_word(checked(w, key, where) if key else w, variables=True)
                          for w, key in opsbook_command(config_file))
    home = _systemd_word("HOME=" + checked(str(Path.home()), "HOME (environment)", where), variables=False)
    service = "\n".join([
        "[Unit]",
        "Description=opsbook: run the scheduled runbooks that are due",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart={exec_start}",
        f"Environment={home}",
        *environment_file,
        # a run may take minutes (a backup restore); the timer does not start a second one meanwhile
        "TimeoutStartSec=6h",
        "Nice=10",
        "",
    ])
    timer = "\n".join([
        "[Unit]",
        "Description=opsbook: check the schedules every minute",
        "",
        "[Timer]",
        "OnCalendar=*-*-* *:*:00",
        "AccuracySec=1s",
        "Persistent=true",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])
    return Units(folder, service, timer, user)


# ------------------------------------------------------------------------------------------ installing
def install_cron(config, config_file: Path | None, *, dry_run: bool) -> str:
    env = env_file_for(config, "cron", user=True)
    line = crontab_line(config, config_file, env)
    if dry_run:
        return line
    env.write()  # before the line that sources it
    kept, _ = _without_ours(_read_crontab())
    _write_crontab("\n".join([*kept, line]) + "\n")
    return line


def uninstall_cron() -> bool:
    kept, removed = _without_ours(_read_crontab())
    EnvFile.remove("cron", user=True)
    if not removed:
        return False
    _write_crontab("\n".join(kept) + ("\n" if kept else ""))
    return True


def _without_ours(table: str) -> tuple[list[str], int]:
    """The crontab's lines but opsbook's (those with the marker, and every line of an entry an earlier opsbook
    split with a newline from a configuration value), and how many lines were opsbook's."""
    lines = table.splitlines()
    ours = {i for i, line in enumerate(lines) if MARKER in line}
    for i, line in enumerate(lines):
        if i in ours or not line.startswith("* * * * * mkdir -p "):
            continue
        end = next((j for j in range(i + 1, min(len(lines), i + LEGACY_LINES)) if MARKER in lines[j]), None)
        if end is not None and _legacy_entry("\n".join(lines[i:end + 1])):
            ours.update(range(i, end + 1))
    return [line for i, line in enumerate(lines) if i not in ours], len(ours)


def _legacy_entry(text: str) -> bool:
    """Whether `text` is, word for word, the crontab entry an earlier opsbook wrote (values quoted by shlex.quote,
    `%` as `\\%`), newlines inside its quoted values included."""
    head, tail = "* * * * * ", f" {MARKER}"
    if not (text.startswith(head) and text.endswith(tail)):
        return False
    try:
        words = shlex.split(text[len(head):-len(tail)].replace("\\%", "%"))
    except ValueError:
        return False
    return (len(words) in (12, 14) and words[:2] == ["mkdir", "-p"] and words[3] == "&&"
            and words[4].startswith("HOME=") and words[5].startswith("PATH=")
            and (len(words) == 12 or words[7] == "--config") and words[-5:-2] == ["schedule", "run-due", ">>"]
            and words[-2] == f"{words[2]}/schedule.log" and words[-1] == "2>&1")


def install_systemd(config, config_file: Path | None, *, user: bool, dry_run: bool) -> Units:
    env = env_file_for(config, "systemd", user=user)
    units = systemd_units(config, config_file, user=user, env=env)
    if not dry_run:
        env.write()
        try:
            units.folder.mkdir(parents=True, exist_ok=True)
            for path, text in units.files().items():
                atomic_write_text(path, text)
        except OSError as e:
            raise UsageError(f"cannot write the systemd units into {units.folder}: {e.strerror}"
                             + ("" if user else " (use --user for your own timers, or run as root)")) from None
    return units


def uninstall_systemd(*, user: bool) -> list[Path]:
    """Remove the units, the link `systemctl enable` made for the timer, and any temporary file an interrupted
    install left; the list of what was removed."""
    folder = units_folder(user)
    candidates = [folder / f"{UNIT}.service", folder / f"{UNIT}.timer",
                  folder / "timers.target.wants" / f"{UNIT}.timer"]
    if folder.is_dir():
        candidates += sorted(folder.glob(f".{UNIT}.*tmp"))
    removed = []
    for p in candidates:
        if p.is_symlink() or p.is_file():
            p.unlink()
            removed.append(p)
    gone = EnvFile.remove("systemd", user=user)
    return removed + ([gone] if gone else [])


def _crontab() -> str:
    exe = shutil.which("crontab")
    if exe is None:
        raise UsageError("no `crontab` command here (is cron installed?): use --dry-run to print the line, or "
                         "--systemd for a systemd timer")
    return exe


def _read_crontab() -> str:
    out = subprocess.run([_crontab(), "-l"], capture_output=True, text=True)
    if out.returncode != 0:
        if "no crontab" in out.stderr.lower():
            return ""
        raise OpsbookError(f"crontab -l failed: {out.stderr.strip()[:200]}")
    return out.stdout


def _write_crontab(text: str) -> None:
    out = subprocess.run([_crontab(), "-"], input=text, capture_output=True, text=True)
    if out.returncode != 0:
        raise OpsbookError(f"crontab could not be written: {out.stderr.strip()[:200]}")
