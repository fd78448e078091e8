"""Who the timers run as: the system units' `User=`/`Group=` (never root unless asked for), and whether a user's
own timers outlive the login (systemd-logind's linger)."""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import UsageError

LINGER_FLAGS = Path("/var/lib/systemd/linger")  # what `loginctl enable-linger USER` creates: one file per user


@dataclass(frozen=True)
class Account:
    user: str
    group: str
    home: str
    uid: int


def _account(pw: pwd.struct_passwd) -> Account:
    try:
        group = grp.getgrgid(pw.pw_gid).gr_name
    except KeyError:
        group = str(pw.pw_gid)
    return Account(pw.pw_name, group, pw.pw_dir, pw.pw_uid)


def current_user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def run_as(name: str | None) -> Account:
    """The account a system unit runs as: `name` (--run-as), else the installing user (the one behind sudo when
    installing as root). Root only when asked for by name: a unit that silently runs as root is refused."""
    if name is not None:
        try:
            return _account(pwd.getpwnam(name))
        except KeyError:
            raise UsageError(f"--run-as {name!r}: no such user here; nothing installed") from None
    uid = os.geteuid()
    sudo = os.environ.get("SUDO_USER")
    if uid == 0 and sudo and sudo != "root":
        try:
            return _account(pwd.getpwnam(sudo))
        except KeyError:
            pass
    if uid == 0:
        raise UsageError("the system unit would run opsbook as root: give --run-as USER (an account that can read "
                         "the configuration and write the reports folder), or --run-as root to mean it; "
                         "nothing installed")
    return _account(pwd.getpwuid(uid))


def linger(user: str) -> bool | None:
    """Whether USER's timers keep running after the last logout: `loginctl show-user USER -p Linger`, else the
    flag file `enable-linger` writes (logind answers only for a user with a session or lingering); None when
    neither can tell (no systemd here)."""
    exe = shutil.which("loginctl")
    if exe is not None:
        try:
            out = subprocess.run([exe, "show-user", user, "--property=Linger", "--value"], capture_output=True,
                                 text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
            return out.stdout.strip() == "yes"
    if LINGER_FLAGS.is_dir():
        return (LINGER_FLAGS / user).exists()
    return None


def linger_note(user: str) -> str:
    """What a `--user` install says about linger, one line."""
    state = linger(user)
    if state:
        return (f"# linger is on for {user} (loginctl show-user): these timers run also while {user} is logged "
                "out")
    now = f"linger is off for {user} now" if state is False else \
        f"linger could not be checked here: no answer from loginctl, no {LINGER_FLAGS}"
    return (f"# these user timers run only while {user} is logged in, unless lingering is on: "
            f"`loginctl enable-linger {user}` keeps them running after logout ({now})")
