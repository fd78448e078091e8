"""`schedule install`: the crontab lines or systemd units of one configuration: `opsbook schedule run-due` every
minute, history snapshots (and `watch`) at the configuration's interval (timers.py), named with a short id of the
configuration's path so that a second configuration gets timers of its own.

Every value written into them (paths, HOME, PATH) is checked first: a newline, carriage return, NUL or other
control character would start a crontab entry or a unit setting of its own, so it is refused (exit 2, naming
where the value came from) and nothing is written. What remains is quoted for sh, cron's `%` and systemd.

Secrets: cron hands its command a bare environment and a unit gets only what it says, so the variables the
notifiers name (`url_env`, `user_env`, `password_env`) and the targets' `dsn_env` go, from the installing shell,
into an env file of mode 0600 (see secrets_env.py) that the crontab lines source and the services read with
`EnvironmentFile=`; a secret in a file (`url_file`, ...) needs nothing more, as opsbook.toml names the file.

An earlier opsbook named its one timer without an id (`opsbook-schedule.service`, a crontab line ending in
MARKER): installing or uninstalling the configuration it runs migrates or removes it; one running another
configuration is left alone (its own install migrates it, `uninstall --all` removes it): install_legacy.py.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import OpsbookError, UsageError
from ..config.paths import atomic_write_text
from . import install_legacy as earlier
from .accounts import Account
from .install_legacy import MANAGED, MARKER  # noqa: F401 - MARKER: the run-due line's, as before
from .secrets_env import EnvFile, env_file_for
from .timers import Job, config_id, jobs

TAGGED = re.compile(r" # id ([0-9a-f]{8}|default) # opsbook (schedule run-due|snapshot|watch) "
                    + re.escape(MANAGED) + "$")
JOB_NAMES = ("schedule", "snapshot", "watch")
WANTS = ("timers.target.wants", "default.target.wants", "multi-user.target.wants")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_NAMES = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL"}
SYSTEMD_PLAIN = re.compile(r"[\w@+=:,./-]+", re.ASCII)  # needs no quotes nor escapes in a unit


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


def opsbook_command(config_file: Path | None, args: tuple[str, ...] = ("schedule", "run-due")) \
        -> list[tuple[str, str]]:
    """The absolute command a timer runs (this installation's opsbook, with the configuration in use), each word
    with the name of where it came from."""
    exe = Path(sys.argv[0]).resolve() if Path(sys.argv[0]).name == "opsbook" else None
    exe = exe or (Path(sys.executable).parent / "opsbook")
    cmd = [(str(exe), "the opsbook command's path")]
    if config_file is not None:
        cmd += [("--config", ""), (str(Path(config_file).absolute()), "the --config path")]
    return cmd + [(a, "[history] in the configuration") for a in args]


def _cron_word(value: str) -> str:
    """`value` quoted for sh, with every `%` outside the quotes as `\\%`: cron turns an unescaped `%` into a
    newline and `\\%` into `%`, and a backslash of the value must never stand right before the escape."""
    return "\\%".join(shlex.quote(part) if part else "" for part in value.split("%")) or "''"


def log_file(config, name: str = "schedule.log") -> Path:
    return Path(config.reports_dir).absolute() / name


def marker(job: Job, cid: str) -> str:
    return f"# id {cid} # opsbook {job.label} {MANAGED}"


def crontab_line(config, config_file: Path | None, env: EnvFile | None = None, job: Job | None = None) -> str:
    """`FIELDS mkdir -p LOGDIR && HOME=.. PATH=.. opsbook ... >> LOG 2>&1 # id ID # opsbook ...`: cron hands the
    command to /bin/sh with a bare environment (HOME and PATH matter for ~/.pgpass and the client tools), the
    log's folder may not exist yet on a fresh machine, and `%` would be a newline to cron. With an env file (the
    notifiers' and targets' variables), `set -a && . ENVFILE 2>> LOG && set +a && ` comes before HOME: a missing file is said
    in the log."""
    job = job or jobs(config)[0]
    where = "a crontab line"
    log = log_file(config, job.log)
    logdir = checked(str(log.parent), "[reports] dir", where)
    home = checked(str(Path.home()), "HOME (environment)", where)
    path = checked(os.environ.get("PATH", "/usr/bin:/bin"), "PATH (environment)", where)
    cmd = " ".join(_cron_word(checked(w, key, where) if key else w)
                   for w, key in opsbook_command(config_file, job.args))
    source = ""
    if env is not None and env.values:
        envfile = checked(str(env.path), "the env file's path", where)
        source = f"set -a && . {_cron_word(envfile)} 2>> {_cron_word(str(log))} && set +a && "
    command = (f"mkdir -p {_cron_word(logdir)} && {source}HOME={_cron_word(home)} PATH={_cron_word(path)} {cmd} "
               f">> {_cron_word(str(log))} 2>&1")
    return f"{job.cron} {command} {marker(job, config_id(config_file))}"


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
    user: bool
    texts: dict[str, str] = field(default_factory=dict)  # file name -> text
    start: list[str] = field(default_factory=list)  # what `systemctl enable --now` takes

    def files(self) -> dict[Path, str]:
        return {self.folder / name: text for name, text in self.texts.items()}

    def enable_hint(self) -> str:
        flag = " --user" if self.user else ""
        return f"systemctl{flag} daemon-reload && systemctl{flag} enable --now {' '.join(self.start)}"


def units_folder(user: bool) -> Path:
    """~/.config/systemd/user for --user, else /etc/systemd/system."""
    if user:
        return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd" / "user"
    return Path("/etc/systemd/system")


def unit_name(job_name: str, cid: str) -> str:
    return f"opsbook-{job_name}-{cid}"


def systemd_units(config, config_file: Path | None, *, user: bool, env: EnvFile | None = None,
                  account: Account | None = None) -> Units:
    """A .service and a .timer per job (a long-running, restarting .service for `watch`); a system unit runs as
    `account` (User=, Group=, its HOME)."""
    where = "a systemd unit"
    cid = config_id(config_file)
    environment_file = []
    if env is not None and env.values:  # one path, `%` doubled (a specifier otherwise); read before the start
        environment_file = [f"EnvironmentFile={checked(str(env.path), 'the env file path', where).replace('%', '%%')}"]
    run_as = []
    home_dir = str(Path.home())
    if not user and account is not None:
        run_as = [f"User={_systemd_word(checked(account.user, '--run-as', where), variables=False)}",
                  f"Group={_systemd_word(checked(account.group, 'the group of --run-as', where), variables=False)}"]
        home_dir = account.home
    home = _systemd_word("HOME=" + checked(home_dir, "HOME (environment)", where), variables=False)
    which = f" ({config_file.absolute()})" if config_file is not None else ""
    units = Units(units_folder(user), user)
    for job in jobs(config):
        name = unit_name(job.name, cid)
        exec_start = " ".join(_systemd_word(checked(w, key, where) if key else w, variables=True)
                              for w, key in opsbook_command(config_file, job.args))
        lasting = job.calendar is None
        service = [
            "[Unit]",
            f"Description=opsbook: {job.description}{which}".replace("%", "%%"),
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=simple" if lasting else "Type=oneshot",
            f"ExecStart={exec_start}",
            f"Environment={home}",
            *environment_file,
            *run_as,
            # a run may take minutes (a backup restore); the timer does not start a second one meanwhile
            *(["Restart=always", "RestartSec=5s"] if lasting
              else [f"TimeoutStartSec={'6h' if job.name == 'schedule' else '30min'}"]),
            "Nice=10",
            "",
        ]
        if lasting:
            service += ["[Install]", f"WantedBy={'default.target' if user else 'multi-user.target'}", ""]
            units.start.append(f"{name}.service")
        units.texts[f"{name}.service"] = "\n".join(service)
        if lasting:
            continue
        units.texts[f"{name}.timer"] = "\n".join([
            "[Unit]",
            f"Description=opsbook: {job.description}{which} ({job.calendar})".replace("%", "%%"),
            "",
            "[Timer]",
            f"OnCalendar={job.calendar}",
            "AccuracySec=1s",
            # a missed run-due slot is caught up once; a missed snapshot is not worth taking late
            f"Persistent={'true' if job.name == 'schedule' else 'false'}",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ])
        units.start.append(f"{name}.timer")
    return units


# ------------------------------------------------------------------------------------------ cron
@dataclass
class Change:
    """What an install or uninstall did: the lines or files it wrote or removed, and an earlier opsbook's unnamed
    timer it migrated (install) or removed (uninstall)."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    legacy: list[str] = field(default_factory=list)
    others: int = 0  # other configurations' timers left in place (lines or unit files)


def install_cron(config, config_file: Path | None, *, dry_run: bool) -> Change:
    cid = config_id(config_file)
    env = env_file_for(config, "cron", user=True, cid=cid)
    lines = [crontab_line(config, config_file, env, job) for job in jobs(config)]
    if dry_run:
        return Change(written=lines)
    env.write()  # before the lines that source it
    kept, removed, legacy = _without_ours(_read_crontab(), cid, config_file)
    _write_crontab("\n".join([*kept, *lines]) + "\n")
    if legacy:
        EnvFile.remove("cron", user=True, cid="")
    return Change(written=lines, removed=removed, legacy=legacy)


def uninstall_cron(config_file: Path | None = None, *, every: bool = False) -> Change:
    """Remove this configuration's lines (every opsbook line with `every`), its env file, and an earlier opsbook's
    unnamed line when it ran this configuration."""
    cid = config_id(config_file)
    table = _read_crontab()
    kept, removed, legacy = _without_ours(table, None if every else cid, config_file, every=every)
    gone = EnvFile.remove("cron", user=True, cid=None if every else cid)
    if legacy and not every:
        gone += EnvFile.remove("cron", user=True, cid="")
    if removed or legacy:
        _write_crontab("\n".join(kept) + ("\n" if kept else ""))
    others = sum(1 for line in kept if TAGGED.search(line) or line.endswith(f" {MARKER}"))
    return Change(removed=removed + [str(p) for p in gone], legacy=legacy, others=others)


def _without_ours(table: str, cid: str | None, config_file: Path | None, *, every: bool = False) \
        -> tuple[list[str], list[str], list[str]]:
    """(the crontab's lines but this configuration's, its tagged lines, an earlier opsbook's entries that ran this
    configuration): with `every`, all of opsbook's."""
    lines = table.splitlines()
    tagged = {i for i, line in enumerate(lines) if (m := TAGGED.search(line)) and (every or m.group(1) == cid)}
    legacy = earlier.cron_lines(lines, config_file, every=every, skip=lambda line: TAGGED.search(line) is not None)
    ours = tagged | legacy
    return ([line for i, line in enumerate(lines) if i not in ours], [lines[i] for i in sorted(tagged)],
            [lines[i] for i in sorted(legacy)])


# ------------------------------------------------------------------------------------------ systemd
def install_systemd(config, config_file: Path | None, *, user: bool, dry_run: bool,
                    account: Account | None = None) -> tuple[Units, Change]:
    cid = config_id(config_file)
    env = env_file_for(config, "systemd", user=user, cid=cid)
    units = systemd_units(config, config_file, user=user, env=env, account=account)
    change = Change(written=[str(p) for p in units.files()])
    if dry_run:
        return units, change
    env.write()
    try:
        units.folder.mkdir(parents=True, exist_ok=True)
        for path, text in units.files().items():
            atomic_write_text(path, text)
    except OSError as e:
        raise UsageError(f"cannot write the systemd units into {units.folder}: {e.strerror}"
                         + ("" if user else " (use --user for your own timers, or run as root)")) from None
    # a job the configuration no longer has (snapshot_every = "off", no watch_every): its units go
    stale = [p for p in _unit_files(units.folder, cid) if p.name not in units.texts]
    change.removed = [str(p) for p in _unlink(stale)]
    if earlier.unit_runs(units.folder, config_file):
        change.legacy = [str(p) for p in _unlink(earlier.unit_files(units.folder))]
        change.legacy += [str(p) for p in EnvFile.remove("systemd", user=user, cid="")]
    return units, change


def uninstall_systemd(config_file: Path | None = None, *, user: bool, every: bool = False) -> Change:
    """Remove this configuration's units (every opsbook unit with `every`), the links `systemctl enable` made,
    any temporary file an interrupted install left, its env file, and an earlier opsbook's unnamed units when
    they ran this configuration."""
    folder = units_folder(user)
    cid = config_id(config_file)
    change = Change(removed=[str(p) for p in _unlink(_unit_files(folder, None if every else cid))])
    change.removed += [str(p) for p in EnvFile.remove("systemd", user=user, cid=None if every else cid)]
    if every or earlier.unit_runs(folder, config_file):
        change.legacy = [str(p) for p in _unlink(earlier.unit_files(folder))]
        change.legacy += [] if every else [str(p) for p in EnvFile.remove("systemd", user=user, cid="")]
    change.others = len([p for p in _unit_files(folder, None) if p.parent == folder]) + \
        sum(p.is_file() for p in earlier.unit_files(folder)[:2])
    return change


def _unit_files(folder: Path, cid: str | None) -> list[Path]:
    """This configuration's unit files (all configurations' with cid None), their enable links and temporaries."""
    if not folder.is_dir():
        return []
    ids = re.escape(cid) if cid else r"(?:[0-9a-f]{8}|default)"
    name = re.compile(rf"opsbook-(?:{'|'.join(JOB_NAMES)})-{ids}\.(?:service|timer)")
    temp = re.compile(rf"\.opsbook-(?:{'|'.join(JOB_NAMES)})-{ids}\.(?:service|timer)\..*tmp")
    found = [p for p in folder.iterdir() if name.fullmatch(p.name) or temp.fullmatch(p.name)]
    for wants in WANTS:
        if (folder / wants).is_dir():
            found += [p for p in (folder / wants).iterdir() if name.fullmatch(p.name)]
    return sorted(found)


def _unlink(paths: list[Path]) -> list[Path]:
    removed = []
    for p in paths:
        if p.is_symlink() or p.is_file():
            p.unlink()
            removed.append(p)
    return removed


# ------------------------------------------------------------------------------------------ crontab
def _crontab() -> str:
    exe = shutil.which("crontab")
    if exe is None:
        raise UsageError("no `crontab` command here (is cron installed?): use --dry-run to print the lines, or "
                         "--systemd for systemd timers")
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
