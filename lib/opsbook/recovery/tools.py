"""Which pg_dump / pg_restore / psql does the work, and how they are handed a connection without leaking it."""
from __future__ import annotations

import contextlib
import functools
import glob
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import OpsbookError
from ..database.clientenv import SYSTEM_GLOBS, child_env, scratch_env

TOOLS = ("pg_dump", "pg_restore", "psql")
SSL_MODES_REQUIRING = {"require", "verify-ca", "verify-full"}
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}


class ClientError(OpsbookError):
    """No usable client tools: absent, older than the server, or without the SSL the target needs."""

    def __init__(self, message: str, kind: str):
        self.kind = kind  # absent | too_old | no_ssl | failed
        super().__init__(message)


@dataclass(frozen=True)
class Client:
    """One set of PostgreSQL client binaries (pg_dump, pg_restore, psql) from one bin directory."""

    bindir: Path
    version: str  # "18.6"
    major: int
    ssl: bool | None  # built with OpenSSL; None when it cannot be told
    source: str  # embedded | PATH | system | given

    def path(self, tool: str) -> str:
        return str(self.bindir / tool)

    def describe(self, tool: str = "pg_dump") -> str:
        ssl = {True: "with SSL", False: "without SSL", None: "SSL unknown"}[self.ssl]
        return f"{self.path(tool)} {self.version} ({self.source}, {ssl})"


def major_of(version_num: int) -> int:
    """18 from 180006, 9 from 90624 (majors before 10 had two parts; we only need the first for ordering)."""
    return version_num // 10000


@functools.cache
def probe(bindir: str | Path, source: str = "given") -> Client | None:
    """The client in `bindir`, or None when it lacks any of pg_dump, pg_restore, psql or does not run."""
    bindir = Path(bindir)
    if not all((bindir / t).is_file() and os.access(bindir / t, os.X_OK) for t in TOOLS):
        return None
    from ..database.embedded import binary_version  # noqa: PLC0415

    found = binary_version(bindir / "pg_dump")
    return None if found is None else Client(bindir, found[0], found[1], _has_ssl(bindir), source)


def _has_ssl(bindir: Path) -> bool | None:
    """Built with OpenSSL? pg_config says so where it exists; else whether libssl is linked."""
    pg_config = bindir / "pg_config"
    if pg_config.is_file():
        try:
            out = subprocess.run([str(pg_config), "--configure"], capture_output=True, text=True, timeout=20)
            if out.returncode == 0:
                return bool(re.search(r"--with-(openssl|ssl=openssl)", out.stdout))
        except (OSError, subprocess.TimeoutExpired):
            pass
    if shutil.which("ldd"):  # no pg_config: is libssl linked, directly or through libpq?
        libs = _ldd(bindir / "pg_dump")
        libpq = re.search(r"libpq[^ ]*\.so[^ ]* => (\S+)", libs)
        return "libssl" in libs or bool(libpq and "libssl" in _ldd(Path(libpq.group(1))))
    return None


def _ldd(path: Path) -> str:
    try:
        return subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def candidates() -> list[Client]:
    """Every client found: the embedded wheel's first, then PATH, then the usual system places."""
    from ..database.embedded import embedded_bindir  # noqa: PLC0415

    found: list[Client] = []
    seen: set[Path] = set()

    def add(bindir: Path, source: str) -> None:
        real = bindir.resolve()
        if real in seen:
            return
        seen.add(real)
        client = probe(str(bindir), source)
        if client:
            found.append(client)

    add(embedded_bindir(), "embedded")
    on_path = shutil.which("pg_dump")
    if on_path and Path(on_path).resolve().name == "pg_dump":  # not Debian's pg_wrapper, covered below
        add(Path(on_path).resolve().parent, "PATH")
    for pattern in SYSTEM_GLOBS:
        for d in sorted(glob.glob(pattern)):
            add(Path(d), "system")
    return found


def needs_ssl(conninfo: str) -> tuple[bool, bool]:
    """(required, preferred): sslmode demands SSL, or the host is remote (Supabase and most clouds require it)."""
    parts = _parts(conninfo)
    mode = (parts.get("sslmode") or os.environ.get("PGSSLMODE") or "").lower()
    if mode in SSL_MODES_REQUIRING:
        return True, True
    if mode == "disable":
        return False, False
    hosts = [h for h in (parts.get("host") or os.environ.get("PGHOST") or "").split(",")]
    remote = any(h.strip() not in LOCAL_HOSTS and not h.strip().startswith(("/", "@")) for h in hosts)
    return False, remote


def choose(server_version_num: int | None, *, conninfo: str = "", bindir: str | None = None,
           min_major: int = 0) -> Client:
    """The client to use against a server of that version (and for archives made by pg_dump `min_major`).

    The server's own major version where it is installed (PATH, the system's folders, the embedded wheel): a newer
    pg_dump writes what only its own major version reads back (PostgreSQL 18's pg_dump of a 15 server emitted
    column options a restore rejects); else the newest that can talk to it. A client older than the server is
    refused here, before pg_dump would refuse with a half-written file.
    """
    server_major = major_of(server_version_num or 0)
    need = max(server_major, min_major)
    ssl_required, ssl_preferred = needs_ssl(conninfo) if conninfo else (False, False)
    if bindir:
        client = probe(str(Path(bindir)), "given")
        if client is None:
            raise ClientError(f"no pg_dump, pg_restore and psql in {bindir}; give the bin directory of a "
                              "PostgreSQL client installation", "absent")
        _check(client, need, ssl_required)
        return client
    found = candidates()
    usable = [c for c in found if c.major >= need and not (ssl_required and c.ssl is False)]
    if not usable:
        seen = "; ".join(c.describe() for c in found) or "none"
        kind = "no_ssl" if ssl_required else "too_old" if found else "absent"
        what = f"a PostgreSQL client of major version {need} or newer" + (" with SSL" if ssl_required else "")
        raise ClientError(f"no {what} was found (the server is PostgreSQL {need}"
                          f"{'; the connection requires SSL' if ssl_required else ''}); found: {seen}. Install "
                          f"postgresql-client-{need} (apt.postgresql.org) or set client_bindir", kind)
    # The server's own major first; then, for remote targets, one with SSL; then the newest, the pinned embedded
    # one among equals.
    return sorted(usable, key=lambda c: (c.major != server_major, not (ssl_preferred and c.ssl), -c.major,
                                         c.source != "embedded"))[0]


def _check(client: Client, need: int, ssl_required: bool) -> None:
    if client.major < need:
        raise ClientError(f"{client.describe()} is older than the server (PostgreSQL {need}): pg_dump refuses to "
                          f"dump a newer server and pg_restore cannot read newer archives. Use a client of major "
                          f"version {need} or newer", "too_old")
    if ssl_required and client.ssl is False:
        raise ClientError(f"{client.describe()} was built without SSL and the connection requires it (sslmode); "
                          "use a client built with OpenSSL, such as the system's postgresql-client", "no_ssl")


# ------------------------------------------------------------------------------------------ TLS of the dump
SSL_STRENGTH = {"disable": 0, "allow": 1, "prefer": 2, "require": 3, "verify-ca": 4, "verify-full": 5}


def session_tls(session) -> bool:
    """Whether opsbook's own session to the target is encrypted (SSL in use on its connection)."""
    try:
        return bool(session.raw.pgconn.ssl_in_use)
    except Exception:  # noqa: BLE001 - no session (live unreachable): nothing to match
        return False


def dump_conninfo(conninfo: str, session_ssl: bool) -> str:
    """The connection string for pg_dump: when opsbook's session is encrypted, sslmode at least `require`, so the
    copy of the whole database never travels in clear text where the diagnostics did not (a pg_dump built without
    SSL under sslmode=prefer would quietly connect without it). A stronger mode (verify-ca, verify-full), from the
    string or PGSSLMODE, is kept."""
    if not session_ssl or SSL_STRENGTH.get(sslmode_of(conninfo), 0) >= SSL_STRENGTH["require"]:
        return conninfo
    from psycopg.conninfo import make_conninfo  # noqa: PLC0415

    return make_conninfo(conninfo, sslmode="require")


def sslmode_of(conninfo: str) -> str:
    """The sslmode a client would apply: the string's, else PGSSLMODE's, else libpq's default (prefer)."""
    return (_parts(conninfo).get("sslmode") or os.environ.get("PGSSLMODE") or "prefer").lower()


# ------------------------------------------------------------------------------------------ connections
def _parts(conninfo: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    try:
        return {k: str(v) for k, v in conninfo_to_dict(conninfo).items()}
    except Exception:  # noqa: BLE001 - an unparsable string is libpq's to report, without echoing it
        return {}


def with_dbname(conninfo: str, dbname: str) -> str:
    """The same connection settings, another database."""
    from psycopg.conninfo import make_conninfo  # noqa: PLC0415

    return make_conninfo(conninfo, dbname=dbname)


def dbname_of(conninfo: str) -> str:
    return _parts(conninfo).get("dbname", "")


SECRET_KEYS = ("password", "sslpassword")  # libpq parameters that must never reach a command line
def _is_throwaway(conninfo: str) -> bool:
    """Does `conninfo` reach the socket of a throwaway cluster this process runs?"""
    from ..database.sandbox.cluster import live_socket_dirs  # noqa: PLC0415

    host = _parts(conninfo).get("host", "")
    return bool(host) and host in live_socket_dirs()


def libpq_args(conninfo: str, application: str) -> tuple[str, dict[str, str]]:
    """(connection string without password, environment) for a client subprocess; see client_connection() for one
    that keeps every secret (sslpassword too) off the command line."""
    from psycopg.conninfo import make_conninfo  # noqa: PLC0415

    parts = _parts(conninfo)
    env = {**os.environ, "PGAPPNAME": application, "LC_ALL": "C", "PGCONNECT_TIMEOUT": "10"}
    password = parts.pop("password", None)
    if password:
        env["PGPASSWORD"] = password
    return (make_conninfo(**parts) if parts else conninfo), env


@contextlib.contextmanager
def client_connection(conninfo: str, application: str):
    """(dsn for --dbname, environment) for pg_dump/pg_restore/psql, with no secret on the command line, where
    `ps` and /proc/<pid>/cmdline would show it to every local user.

    A connection with a password or an sslpassword goes into a pg_service.conf, 0600 in a private 0700 folder
    that exists only while the tool runs; the command line says `service=opsbook`. Without secrets the
    connection string itself is used.
    """
    parts = _parts(conninfo)
    env = (scratch_env if _is_throwaway(conninfo) else child_env)(PGAPPNAME=application, PGCONNECT_TIMEOUT="10")
    secrets_ = [parts[k] for k in SECRET_KEYS if parts.get(k)]
    env = {k: v for k, v in env.items() if not any(s in v for s in secrets_)}  # PGPASSWORD too, then
    if not parts or not secrets_:
        yield conninfo, env
        return
    folder = tempfile.mkdtemp(prefix="opsbook-conn-")  # mkdtemp: 0700, ours alone
    try:
        path = Path(folder) / "pg_service.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("[opsbook]\n" + "".join(f"{k}={_service_value(v)}\n" for k, v in parts.items()))
        env["PGSERVICEFILE"] = str(path)
        yield "service=opsbook", env
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _service_value(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ClientError("a connection parameter holds a line break; it cannot be passed to the client tools",
                          "failed")
    return value


def session_for(conninfo: str, label: str, **kw):
    """A read-only opsbook Session on any connection string (the scratch database, the restore server)."""
    from ..config.file import Target  # noqa: PLC0415
    from ..database.session import connect  # noqa: PLC0415

    return connect(Target(label, dsn=conninfo), **kw)
