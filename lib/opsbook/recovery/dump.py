"""Take a backup now with pg_dump: read-only by nature, never waiting long for a lock."""
from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.redact import redact_sql
from .tools import Client, client_connection

FORMATS = {"custom": ("c", ".dump"), "directory": ("d", ".dir"), "plain": ("p", ".sql"), "tar": ("t", ".tar")}
# pg_dump takes ACCESS SHARE locks on every table; behind a pending ACCESS EXCLUSIVE lock (a migration) it would
# queue and make everything else queue behind it. Give up after this long instead.
LOCK_WAIT_TIMEOUT_MS = 10_000


@dataclass
class DumpResult:
    path: Path
    format: str
    ok: bool
    duration_s: float
    size_bytes: int
    command: str  # as shown to people: no password
    client: Client
    error: str | None = None


def dump_name(dbname: str, fmt: str, at: dt.datetime | None = None) -> str:
    """backup_<db>_YYYYmmdd_HHMMSSZ.<ext>: sortable, and says what and when (the guides' own naming)."""
    at = at or dt.datetime.now(dt.timezone.utc)
    return f"{name_prefix(dbname)}{at:%Y%m%d_%H%M%S}Z{FORMATS[fmt][1]}"


def name_prefix(dbname: str) -> str:
    return f"backup_{re.sub(r'[^A-Za-z0-9.-]', '_', dbname or 'db')}_"


def take(client: Client, conninfo: str, dest: Path, fmt: str = "custom", timeout_s: float | None = None) -> DumpResult:
    """Run pg_dump into `dest` (a file, or a folder for the directory format). A failure leaves no file behind."""
    if fmt not in FORMATS:
        raise ValueError(f"dump format {fmt!r} is not one of {', '.join(FORMATS)}")
    dest = Path(dest)
    private_folder(dest.parent)
    t0 = time.perf_counter()
    with client_connection(conninfo, "opsbook-pg_dump") as (dsn, env):
        cmd = [client.path("pg_dump"), f"--format={FORMATS[fmt][0]}", f"--lock-wait-timeout={LOCK_WAIT_TIMEOUT_MS}",
               "--no-password", "--file", str(dest), "--dbname", dsn]
        shown = " ".join(cmd[:-1] + ["'<target>'"])
        try:  # umask 077: a dump holds every row, it is created readable by its owner only (0600, 0700)
            out = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env, timeout=timeout_s,
                                 umask=0o077)
            code, stderr = out.returncode, out.stderr
        except subprocess.TimeoutExpired:
            code, stderr = -1, f"pg_dump did not finish within {timeout_s:.0f} s and was stopped"
    seconds = time.perf_counter() - t0
    if code != 0:
        _remove(dest)
        return DumpResult(dest, fmt, False, seconds, 0, shown, client, explain(stderr, client))
    return DumpResult(dest, fmt, True, seconds, _size(dest), shown, client)


def explain(stderr: str, client: Client) -> str:
    """pg_dump's own words, with the next step where we know it."""
    lines = [line.replace("pg_dump: error: ", "").replace("pg_dump: detail: ", "")
             for line in (stderr or "").splitlines() if line.strip()]
    text = redact_sql("; ".join(lines[-3:]) or "pg_dump failed without a message")
    if "server version mismatch" in text:
        text += (f" -- the client ({client.describe()}) is older than the server; use a pg_dump of the server's "
                 "major version or newer (client_bindir)")
    elif "no pg_hba.conf entry" in text:
        text += (" -- the server's pg_hba.conf has no rule for this host/user/database/encryption; with \"no "
                 "encryption\", connect with SSL (sslmode=require, a pg_dump built with SSL)")
    elif "SSL" in text and client.ssl is False:
        text += " -- this pg_dump has no SSL support; use the system's (client_bindir)"
    elif "lock" in text and "timeout" in text:
        text += " -- a table was locked exclusively (a migration?); retry when it is done"
    return text


def private_folder(folder: Path) -> Path:
    """Make `folder` (and missing parents) 0700; an existing folder opsbook did not make is left as it is."""
    folder = Path(folder)
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
        folder.chmod(0o700)
    return folder


def prune(folder: Path, keep: int, prefix: str, *, dry_run: bool = False) -> list[Path]:
    """Remove all but the newest `keep` dumps named `prefix...` (opsbook's own naming only) in `folder`."""
    ours = sorted((p for p in Path(folder).iterdir() if p.name.startswith(prefix) and
                   re.search(r"_\d{8}_\d{6}Z\.", p.name)), key=lambda p: p.name, reverse=True)
    for p in ours[keep:]:
        if not dry_run:
            _remove(p)
    return ours[keep:]


def size_of(path: Path) -> int:
    return _size(path)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
