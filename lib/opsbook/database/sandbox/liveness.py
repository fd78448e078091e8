"""Who owns a scratch cluster: a lock file held with flock by the owning process, and the sweep of orphans."""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

# A directory without its lock file (a crash between the two) is dropped only when older than this: longer than
# any run may take (the restore's own timeout, rto_minutes, is capped well below it).
ORPHAN_AGE_S = 24 * 3600


def scratch_root() -> Path:
    """Where throwaway clusters live while a run uses them: beside the embedded server, under $OPSBOOK_HOME."""
    from ...config.paths import default_home  # noqa: PLC0415

    return default_home() / "scratch"


@dataclass
class OwnerLock:
    """The liveness marker of one cluster: `<name>.lock`, flock'ed for as long as the owner lives (the kernel
    releases it when the process dies, kill -9 included), holding the owner's pid and what it is for."""

    path: Path
    fh: object = None

    def acquire(self, **info) -> "OwnerLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self.fh = os.fdopen(fd, "r+")
        fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.fh.write(json.dumps({"pid": os.getpid(), "started": time.time(), **info}))
        self.fh.flush()
        return self

    def release(self) -> None:
        if self.fh is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.fh.close()
            self.fh = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def kill_postmaster(data_dir: Path, wait_s: float = 10) -> None:
    """Immediate shutdown (SIGQUIT) of the server on `data_dir`, if one runs; wait for it to go."""
    pid = _postmaster_pid(data_dir)
    if pid is None or not _pid_alive(pid):
        return
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and b"postgres" not in cmdline.read_bytes():
        return  # the pid was reused by something else
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + wait_s
    while _pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def remove_cluster(directory: Path, socket_dir: str | None = None) -> None:
    kill_postmaster(directory / "data")
    shutil.rmtree(directory, ignore_errors=True)
    if socket_dir:
        shutil.rmtree(socket_dir, ignore_errors=True)


def sweep(root: Path | None = None, *, now: float | None = None) -> list[dict]:
    """Drop the clusters whose owner is gone, and only those: a lock file nobody holds any more (its process died:
    killed, power cut), or a directory without a lock file older than ORPHAN_AGE_S. A cluster whose owner is
    alive - another verification running at the same time - is never touched. Returns what was dropped."""
    root = root or scratch_root()
    if not root.is_dir():
        return []
    now = now or time.time()
    dropped = []
    for lock in sorted(p for p in root.glob("*.lock") if not p.name.startswith(".")):
        try:
            fh = open(lock, "r+")  # noqa: SIM115 - held across the removal below
        except OSError:
            continue
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its owner is alive: not ours to judge
            try:
                info = json.loads(fh.read() or "{}")
            except ValueError:
                info = {}
            if info.get("pid") and info["pid"] != os.getpid() and _pid_alive(info["pid"]) and \
                    now - info.get("started", now) < ORPHAN_AGE_S:
                continue  # the lock is free but its process lives: not sure, leave it
            directory = root / lock.name[:-len(".lock")]
            if directory.exists() or info.get("socket_dir"):
                dropped.append({"name": directory.name, "owner_pid": info.get("pid"),
                                "started": _stamp(info.get("started")), "size_bytes": _size(directory),
                                "why": "its owner process is gone"})
            remove_cluster(directory, info.get("socket_dir"))
            with contextlib.suppress(OSError):
                lock.unlink()
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (root / f"{directory.name}.lock").exists():
            continue
        age = now - directory.stat().st_mtime
        if age > ORPHAN_AGE_S:
            dropped.append({"name": directory.name, "owner_pid": None, "started": None,
                            "size_bytes": _size(directory), "why": f"no owner and {age / 3600:.0f} h old"})
            remove_cluster(directory)
    return dropped


def _stamp(ts: float | None) -> str | None:
    if ts is None:
        return None
    return f"{dt.datetime.fromtimestamp(ts, dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
