"""`schedule install`: the crontab line or systemd units that call `opsbook schedule run-due` every minute."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import OpsbookError, UsageError

MARKER = "# opsbook schedule run-due (managed by `opsbook schedule install`; remove with `opsbook schedule uninstall`)"
UNIT = "opsbook-schedule"


def opsbook_command(config_file: Path | None) -> list[str]:
    """The absolute command a timer runs: this installation's opsbook, with the configuration in use."""
    exe = Path(sys.argv[0]).resolve() if Path(sys.argv[0]).name == "opsbook" else None
    exe = exe or (Path(sys.executable).parent / "opsbook")
    cmd = [str(exe)]
    if config_file is not None:
        cmd += ["--config", str(Path(config_file).absolute())]
    return cmd + ["schedule", "run-due"]


def _quote(parts: list[str]) -> str:
    import shlex  # noqa: PLC0415

    return " ".join(shlex.quote(p) for p in parts)


def log_file(config) -> Path:
    return Path(config.reports_dir).absolute() / "schedule.log"


def crontab_line(config, config_file: Path | None) -> str:
    """`* * * * * mkdir -p LOGDIR && HOME=.. PATH=.. opsbook ... schedule run-due >> LOG 2>&1 # marker`: cron hands
    the command to /bin/sh with a bare environment (HOME and PATH matter for ~/.pgpass and the client tools), the
    log's folder may not exist yet on a fresh machine, and `%` would be a newline to cron."""
    log = log_file(config)
    env = f"HOME={_quote([str(Path.home())])} PATH={_quote([os.environ.get('PATH', '/usr/bin:/bin')])}"
    command = (f"mkdir -p {_quote([str(log.parent)])} && {env} {_quote(opsbook_command(config_file))} "
               f">> {_quote([str(log)])} 2>&1")
    return f"* * * * * {command.replace('%', chr(92) + '%')} {MARKER}"


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


def systemd_units(config, config_file: Path | None, *, user: bool) -> Units:
    folder = units_folder(user)
    service = "\n".join([
        "[Unit]",
        "Description=opsbook: run the scheduled runbooks that are due",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart={_quote(opsbook_command(config_file))}",
        f"Environment=HOME={Path.home()}",
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
    line = crontab_line(config, config_file)
    if dry_run:
        return line
    current = _read_crontab()
    kept = [c for c in current.splitlines() if MARKER not in c]
    _write_crontab("\n".join([*kept, line]) + "\n")
    return line


def uninstall_cron() -> bool:
    current = _read_crontab()
    kept = [c for c in current.splitlines() if MARKER not in c]
    if len(kept) == len(current.splitlines()):
        return False
    _write_crontab("\n".join(kept) + ("\n" if kept else ""))
    return True


def install_systemd(config, config_file: Path | None, *, user: bool, dry_run: bool) -> Units:
    units = systemd_units(config, config_file, user=user)
    if not dry_run:
        try:
            units.folder.mkdir(parents=True, exist_ok=True)
            for path, text in units.files().items():
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_text(text)
                os.replace(tmp, path)
        except OSError as e:
            raise UsageError(f"cannot write the systemd units into {units.folder}: {e.strerror}"
                             + ("" if user else " (use --user for your own timers, or run as root)")) from None
    return units


def uninstall_systemd(*, user: bool) -> list[Path]:
    folder = units_folder(user)
    removed = []
    for name in (f"{UNIT}.service", f"{UNIT}.timer"):
        p = folder / name
        if p.exists():
            p.unlink()
            removed.append(p)
    return removed


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
