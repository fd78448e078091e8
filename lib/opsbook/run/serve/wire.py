"""The service's socket and its messages: one JSON object per line, a size limit, the peer's uid checked.

The socket lives in a folder of mode 0700 owned by the user (`$OPSBOOK_HOME/run/`, or a short folder under the
temporary directory when that path is too long for a Unix socket); the socket itself is 0600. On top of the file
modes the service asks the kernel who connected (SO_PEERCRED) and serves its own uid only.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import struct
import tempfile
from pathlib import Path
from typing import Any

MAX_MESSAGE = 4 * 1024 * 1024  # a request carries parameters and an environment: kilobytes, not megabytes
SOCKET_NAME = "opsbook.sock"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux
SOCKET_ENV = "OPSBOOK_SERVICE_SOCKET"  # another socket than the home's (a Dask worker's own service)


GREETING_TIMEOUT_S = 0.5  # how long a client waits to be taken before it runs locally (the service is busy)


def code_stamp() -> str:
    """A digest of the opsbook code this process imported: its folder, every module's size and mtime (the version
    is in opsbook/__init__.py, one of them)."""
    root = Path(__file__).resolve().parents[2]  # lib/opsbook/run/serve/wire.py -> lib/opsbook
    h = hashlib.sha256(f"{root}".encode())
    for path in sorted(root.rglob("*.py")):
        st = path.stat()
        h.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


class WireError(Exception):
    """A message that could not be read: closed early, too long, not one JSON object."""


def supported() -> bool:
    return hasattr(socket, "AF_UNIX") and hasattr(socket, "SO_PEERCRED")


def home() -> Path:
    from ...config.paths import default_home  # noqa: PLC0415

    return default_home().absolute()


def socket_path(base: Path | None = None) -> Path:
    """Where the service of this user and this opsbook home listens ($OPSBOOK_SERVICE_SOCKET when set)."""
    if base is None and os.environ.get(SOCKET_ENV):
        return Path(os.environ[SOCKET_ENV]).absolute()
    folder = (base or home()) / "run"
    if len(str(folder / SOCKET_NAME)) > MAX_SOCKET_PATH:
        digest = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
        folder = Path(tempfile.gettempdir()) / f"opsbook-{os.getuid()}-{digest}"
    return folder / SOCKET_NAME


def private_folder(folder: Path) -> Path:
    """`folder`, made 0700 if absent; refused in one line (UsageError) when it is anything but a folder of ours
    that only we can enter. The fallback under the temporary directory has a name anyone can guess: another local
    user may have made it first (their folder, one open to all, a symlink), and it is then never used. Refusing
    rather than taking a random folder (tempfile.mkdtemp) keeps the socket where every client computes it, with no
    pointer file to trust; a service is an accelerator, and `opsbook run` runs locally without one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(folder, 0o700)  # never follows a symlink in the folder's place: that is "exists"
        os.chmod(folder, 0o700)  # ours, just made (in a sticky folder nobody can swap it): whatever the umask
    except FileExistsError:
        pass
    problem = unsafe(folder)
    if problem is not None:
        from ...core.errors import UsageError  # noqa: PLC0415

        raise UsageError(f"the service's folder {folder} is {problem}: another user may have made it, so it is not "
                         f"used; remove it, or set {SOCKET_ENV} to a socket path in a folder of your own")
    return folder


def unsafe(folder: Path) -> str | None:
    """What is wrong with `folder` as a private folder of ours (None when nothing): checked without following a
    symlink in its place."""
    try:
        st = folder.lstat()
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "not a folder"
    if st.st_uid != os.getuid():
        return f"owned by uid {st.st_uid}, not by you (uid {os.getuid()})"
    if st.st_mode & 0o077:
        return f"open to other users (mode {stat.S_IMODE(st.st_mode):04o}, not 0700)"
    return None


def peer_uid(conn: socket.socket) -> int:
    fmt = "3i"  # struct ucred: pid, uid, gid
    _pid, uid, _gid = struct.unpack(fmt, conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(fmt)))
    return uid


def send(conn: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message, default=str).encode() + b"\n"
    if len(data) > MAX_MESSAGE:
        raise WireError(f"message of {len(data)} bytes is over the {MAX_MESSAGE}-byte limit")
    conn.sendall(data)


class Reader:
    """Reads one JSON object per line from a socket, keeping what follows a line for the next read."""

    def __init__(self, conn: socket.socket):
        self.conn, self.buffer = conn, b""

    def read(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_MESSAGE:
                raise WireError(f"message over the {MAX_MESSAGE}-byte limit")
            chunk = self.conn.recv(65536)
            if not chunk:
                raise WireError("connection closed before a whole message")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than any request is
            raise WireError("not a JSON message") from None
        if not isinstance(message, dict):
            raise WireError("a message must be a JSON object")
        return message
