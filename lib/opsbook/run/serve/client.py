"""What `opsbook run` calls first: the run done by this user's service, or None when it must run locally.

None when no service listens, when it is busy with another run (it did not take the request within half a
second), when it runs other opsbook code, or when the socket is not this user's. The request carries the
caller's environment: it goes only to a process of the same uid (the kernel tells us who listens, SO_PEERCRED),
through a socket in a folder only that user can enter.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
from pathlib import Path
from typing import Any

from ...core.errors import OpsbookError
from . import wire

NO_SERVICE_ENV = "OPSBOOK_NO_SERVICE"  # set (to anything) to always run locally
CONNECT_TIMEOUT_S = 0.5


class ServiceLost(OpsbookError):
    """The service went away during the run."""


def run_via_service(*, runbook: str, target: str, params: dict[str, str], output_dir: Path | None,
                    with_code: bool, self_contained: bool, fail_on: str | None,
                    config_path: str | None) -> dict[str, Any] | None:
    """{"exit_code", "result"} or {"exit_code", "error"} from the service, or None (run locally)."""
    if os.environ.get(NO_SERVICE_ENV) or not wire.supported():
        return None
    conn = _connect(wire.socket_path())
    if conn is None:
        return None
    with conn:
        reader = wire.Reader(conn)
        try:
            conn.settimeout(wire.GREETING_TIMEOUT_S)
            if "hello" not in reader.read():
                return None
            conn.settimeout(None)
            umask = os.umask(0)
            os.umask(umask)
            # paths as given: the service resolves them in our folder, as a local run would
            wire.send(conn, {"op": "run", "runbook": runbook, "target": target, "params": dict(params),
                             "output_dir": str(output_dir) if output_dir else None,
                             "with_code": with_code, "self_contained": self_contained, "fail_on": fail_on,
                             "config_path": config_path, "cwd": os.getcwd(), "environ": dict(os.environ),
                             "code": wire.code_stamp(), "umask": umask})
        except (OSError, wire.WireError):
            return None  # busy, or gone before it took the request: nothing ran
        with _forward_signals(conn):
            try:
                answer = reader.read()
            except (OSError, wire.WireError):
                raise ServiceLost("the opsbook service stopped during the run (see `opsbook serve status`); "
                                  "run again, or with OPSBOOK_NO_SERVICE=1 to run locally") from None
    return None if "declined" in answer else answer


def _connect(path: Path) -> socket.socket | None:
    try:
        st = path.parent.lstat()
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None  # not a folder only we can enter: never send our environment there
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(CONNECT_TIMEOUT_S)
    try:
        conn.connect(str(path))
        if wire.peer_uid(conn) != os.getuid():
            raise PermissionError("the service socket is another user's")
    except OSError:
        conn.close()
        return None
    return conn


@contextlib.contextmanager
def _forward_signals(conn: socket.socket):
    """SIGINT/SIGTERM while the service runs our request become a cancel: the service interrupts the kernel,
    writes the report (status failed) and answers with 130/143, as a local run would."""

    def forward(signum, frame):  # noqa: ARG001
        with contextlib.suppress(OSError, wire.WireError):
            wire.send(conn, {"cancel": signal.Signals(signum).name})

    saved = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
