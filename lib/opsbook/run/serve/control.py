"""Start the service in the background, stop it, ask how it is."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ...core.errors import OpsbookError
from . import wire

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60


def status(path=None) -> dict[str, Any] | None:
    """The running service's status (the home's, or the one on socket `path`), or None when none answers."""
    from .client import _connect  # noqa: PLC0415

    conn = _connect(Path(path) if path else wire.socket_path())
    if conn is None:
        return None
    with conn:
        try:
            conn.settimeout(5)
            reader = wire.Reader(conn)
            reader.read()
            wire.send(conn, {"op": "status"})
            return reader.read()
        except (OSError, wire.WireError):
            return {"busy": True, "socket": str(wire.socket_path())}  # running a request: it greets when done


def start(idle_s: float) -> dict[str, Any]:
    """Start the service in the background (its output in service.log beside the socket); wait until it answers
    and its first kernel is warm."""
    current = status()
    if current is not None:
        return {**current, "already_running": True}
    folder = wire.private_folder(wire.socket_path().parent)
    with open(folder / "service.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "opsbook.run.serve", "--idle", f"{idle_s:g}"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True, cwd="/")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (folder / "service.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise OpsbookError(f"the service exited at start ({tail[0] if tail else 'no output'})")
        s = status()
        if s is not None and s.get("kernel_ready"):
            return s
        time.sleep(0.1)
    raise OpsbookError(f"the service did not get ready within {START_TIMEOUT_S} s (see {folder / 'service.log'})")


def stop() -> bool:
    """Stop the service (a run in progress is interrupted and reported, as SIGTERM does); False if none ran."""
    current = status()
    if current is None or "pid" not in current:
        pid = _pid_file()  # busy with a run, or not answering: the pid it wrote, if that is still the service
        if pid is None or not _is_service(pid):
            return False
    else:
        pid = int(current["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    raise OpsbookError(f"the service (pid {pid}) did not stop within {STOP_TIMEOUT_S} s")


def _pid_file() -> int | None:
    folder = wire.socket_path().parent
    if wire.unsafe(folder) is not None:
        return None  # a pid another user could have written: never signalled
    try:
        return int((folder / "service.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited: its parent did not reap it
    except (OSError, IndexError):
        return False


def _is_service(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"opsbook.run.serve" in f.read() and os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except OSError:
        return False
