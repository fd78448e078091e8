"""A kernel factory: one process that has done a kernel's heavy imports once, and forks a ready kernel per run.

A kernel started from scratch spends about 1.5 s of CPU importing pandas, plotly, SQLAlchemy, psycopg and
opsbook before the run needs them; on two cores, twenty runs in parallel are bound by that CPU, not by the
database. The factory imports them once (`WARM_UP`) and forks; the child becomes an ordinary IPython kernel with
the connection file, working folder and environment of the launch, so jupyter_client, nbclient and papermill see
nothing unusual. No state crosses runs: each kernel is a fresh fork of a process that never ran a cell.

How a kernel is launched: jupyter_client runs `python -m opsbook.run.kernels.forked -f CONNECTION_FILE` (the
launcher: a bare interpreter, a few milliseconds), which sends its working folder, its environment and the
connection file to the factory's socket (a private folder) and stays alive as the kernel's stand-in: signals it
receives (interrupt, terminate) go to the kernel; when the launcher dies (killed by jupyter_client), the kernel
sees its end of the connection close and exits; when the kernel exits, so does the launcher, with its code.

The factory has no threads (forking a threaded process is unsafe); it exits with the process that started it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

from ..serve.wire import peer_uid

# What every runbook's first cell imports; importing it here, before the run, is the whole point of a warm kernel.
# Only imports: nothing that reads the configuration, the environment or a database.
WARM_UP = """\
import opsbook, opsbook.run.context, opsbook.core.display, opsbook.incident.triage, opsbook.incident.remediate
import opsbook.report.charts, opsbook.report.charts.incident, opsbook.report.charts.capacity, opsbook.checks
import pandas, plotly.graph_objects, plotly.io, psycopg, sqlalchemy, sqlalchemy.dialects.postgresql.psycopg
opsbook.checks.load_all()
opsbook.report.charts.setup()  # the renderer and plotly's template: a third of a second on a run's first figure
del opsbook
"""
SOCKET_ENV = "OPSBOOK_KERNEL_FACTORY"
FOLDER_PREFIX = "opsbook-kf-"
MAX_REQUEST = 1024 * 1024


def serve(path: str, parent_pid: int) -> int:
    """The factory's loop: import, listen, fork a kernel per request, reap children, stop with the parent."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no BLAS thread pool in a process that forks
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ipykernel.kernelapp  # noqa: F401, PLC0415 - the kernel's own start-up, imported once

    exec(compile(WARM_UP, "<opsbook warm-up>", "exec"), {})  # noqa: S102 - our own constant
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        sock.listen(16)
        sock.settimeout(1.0)
        print("ready", flush=True)  # the pool waits for this line (a BrokenPipeError: its owner is gone)
        while os.getppid() == parent_pid:
            _reap()
            try:
                conn, _ = sock.accept()
            except (TimeoutError, socket.timeout, InterruptedError):
                continue
            try:
                if peer_uid(conn) != os.getuid():  # the folder is 0700 already; this says so twice
                    raise PermissionError("another user")
                request = _read(conn)
            except (OSError, ValueError):
                conn.close()
                continue
            except Exception:  # noqa: BLE001 - one bad request must not take the factory down
                conn.close()
                continue
            pid = os.fork()
            if pid == 0:  # the kernel
                sock.close()
                _become_kernel(conn, request)  # never returns
            conn.close()
            for fd in request["stdio"]:
                os.close(fd)
    finally:
        sock.close()
        folder = Path(path).parent
        if folder.name.startswith(FOLDER_PREFIX):  # ours (new_socket_path): gone with the factory
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _read(conn: socket.socket) -> dict:
    """The launcher's stdio (three descriptors, passed over the socket) and its JSON request."""
    conn.settimeout(10)
    _, fds, _, _ = socket.recv_fds(conn, 1, 3)
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise ValueError("the launcher's stdio did not come")
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk or len(data) > MAX_REQUEST:
            raise ValueError("incomplete request")
        data += chunk
    try:
        request = json.loads(data)
    except RecursionError:
        raise ValueError("bad request") from None
    if not (isinstance(request, dict) and isinstance(request.get("argv"), list) and
            isinstance(request.get("env"), dict) and isinstance(request.get("cwd"), str)):
        raise ValueError("bad request")
    request["stdio"] = fds
    return request


def _become_kernel(conn: socket.socket, request: dict) -> None:
    code = 1
    try:
        os.setsid()  # its own session: a signal to the factory's group does not reach it
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        os.chdir(request["cwd"])
        conn.settimeout(None)
        conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        _exit_with_launcher(conn)
        for fd, theirs in enumerate(request["stdio"]):  # the launcher's stdio: output goes where it would
            os.dup2(theirs, fd)
            os.close(theirs)
        from ipykernel.kernelapp import IPKernelApp  # noqa: PLC0415

        sys.argv = ["ipykernel_launcher", *map(str, request["argv"])]
        app = IPKernelApp.instance()
        app.initialize(sys.argv[1:])
        app.start()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0
    except BaseException:  # noqa: BLE001 - a kernel that failed to start: its launcher reports the exit code
        import traceback  # noqa: PLC0415

        traceback.print_exc(file=sys.__stderr__)
    finally:
        os._exit(code)


def _exit_with_launcher(conn: socket.socket) -> None:
    """A thread that ends this kernel when its launcher is gone (jupyter_client killed it, or it died)."""
    import threading  # noqa: PLC0415

    def watch():
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True, name="opsbook-launcher-watch").start()


def new_socket_path() -> str:
    return str(Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX)) / "factory.sock")  # mkdtemp: mode 0700


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], int(sys.argv[2])))
