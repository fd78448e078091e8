"""The service: one user's long-lived process holding a warm kernel; runs one request at a time.

A request is what `opsbook run` would do, with the caller's configuration path, working folder and environment:
the run happens under them (the service's own are restored afterwards), through the same `run_runbook`, so
validation (exit 2), read-only sessions, timeouts, redaction and the report files are the same code. Each run
takes a fresh kernel; the next one starts right after the answer, outside any request, with the service's own
environment (the caller's reaches a kernel only through `prepare(replace=True)`, for its one run).

Lifetime: an idle hour (`idle_s`), `opsbook serve stop` (SIGTERM), or a change to the opsbook code it imported
(a stale kernel must not run new code: the request is declined, the CLI runs it locally, the service exits).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from . import wire
from .wire import code_stamp

IDLE_S = 3600
CANCEL_ECHO_S = 10.0  # how long a cancel that missed its run may take to arrive
REQUEST_FIELDS = {"runbook": str, "target": str, "params": dict, "output_dir": (str, type(None)),
                  "with_code": bool, "self_contained": bool, "fail_on": (str, type(None)),
                  "config_path": (str, type(None)), "cwd": str, "environ": dict, "code": str, "umask": int}
GONE_GRACE_S = 10.0  # a run whose caller is gone gets this long to stop after the interrupt, then its kernel dies


def check_request(req: dict[str, Any]) -> str | None:
    """What is wrong with a run request, or None."""
    for name, kind in REQUEST_FIELDS.items():
        if name not in req:
            return f"missing field {name!r}"
        if not isinstance(req[name], kind):
            return f"field {name!r} has the wrong type"
    for mapping in ("params", "environ"):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in req[mapping].items()):
            return f"field {mapping!r} must map strings to strings"
    if not Path(req["cwd"]).is_absolute():
        return "field 'cwd' must be an absolute path"
    if any(not k or "=" in k or "\0" in k or "\0" in v for k, v in req["environ"].items()):
        return "field 'environ' holds a name or value no environment can hold"
    if not 0 <= req["umask"] <= 0o777:
        return "field 'umask' is out of range"
    return None


@contextlib.contextmanager
def as_caller(environ: dict[str, str], cwd: str, umask: int) -> Iterator[None]:
    """This process's environment, working folder and umask are the caller's inside the block, its own after."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_umask = os.umask(umask)  # report files get the caller's modes, as in a local run
    try:
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        os.umask(saved_umask)


class Service:
    def __init__(self, *, base: Path | None = None, idle_s: float = IDLE_S, log=None,
                 parent_pid: int | None = None, own_folder: bool = False):
        self.path = wire.socket_path(base)
        self.parent_pid = parent_pid  # stop when that process is gone (a Dask worker's own service)
        self.own_folder = own_folder
        self.idle_s = idle_s
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.stamp = code_stamp()
        self.started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self.requests = 0
        self.last_activity = time.monotonic()
        self.stopping: str | None = None
        self.pool = None
        self._sock: socket.socket | None = None
        self._running: socket.socket | None = None  # the connection whose run is in progress
        self._cancel_sent = False  # this process signalled itself to cancel the current run
        self._echo_expected: float | None = None  # ... and the signal landed after the run had ended
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ life
    def bind(self) -> None:
        wire.private_folder(self.path.parent)
        if self.path.exists() or self.path.is_symlink():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            probe.settimeout(1)
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink()  # left by a service that died
            else:
                raise RuntimeError(f"a service already listens on {self.path}")
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(16)
        sock.settimeout(1.0)
        self._sock = sock
        (self.path.parent / "service.pid").write_text(f"{os.getpid()}\n")

    def serve(self) -> int:
        """Bind, warm a kernel, answer requests until stopped; returns the exit code."""
        from ..kernels import KernelPool  # noqa: PLC0415

        self.bind()
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._on_signal)
        self.pool = KernelPool(size=1, refill=False, factory=True)
        self.log(f"opsbook service: listening on {self.path} (pid {os.getpid()})")
        try:
            while not self.stopping:
                if time.monotonic() - self.last_activity > self.idle_s:
                    self.stopping = f"idle for {self.idle_s:g} s"
                    break
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    self.stopping = f"its parent (pid {self.parent_pid}) is gone"
                    break
                try:
                    conn, _ = self._sock.accept()
                except (TimeoutError, socket.timeout):
                    continue
                except InterruptedError:
                    continue
                with conn:
                    try:
                        self._handle(conn)
                    except Exception as e:  # noqa: BLE001 - one bad request must not take the service down
                        self.log(f"opsbook service: a request failed: {type(e).__name__}: {str(e)[:200]}")
                self.last_activity = time.monotonic()
        finally:
            self.close()
        self.log(f"opsbook service: stopped ({self.stopping})")
        return 0

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            for p in (self.path, self.path.parent / "service.pid"):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            if self.own_folder:  # a folder made for this service alone (a Dask worker's): gone with it
                shutil.rmtree(self.path.parent, ignore_errors=True)
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        with self._lock:
            running, ours = self._running is not None, self._cancel_sent
        if running and ours:  # our cancel, before the run could be interrupted: the run takes it on entry
            from ..kernels import execute  # noqa: PLC0415

            execute.EARLY_SIGNAL[0] = signum
            return
        if self._echo_expected is not None and time.monotonic() - self._echo_expected < CANCEL_ECHO_S:
            self._echo_expected = None
            return  # our own cancel, which arrived after the run had ended: not a request to stop
        self.stopping = signal.Signals(signum).name

    # ------------------------------------------------------------------ requests
    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            if wire.peer_uid(conn) != os.getuid():
                wire.send(conn, {"declined": "this service serves its own user only"})
                return
            wire.send(conn, {"hello": "opsbook", "pid": os.getpid()})
            reader = wire.Reader(conn)
            req = reader.read()
        except (OSError, wire.WireError):
            return  # a client that gave up waiting (it runs locally) or spoke nonsense
        op = req.get("op")
        try:
            if op == "status":
                wire.send(conn, self.status())
            elif op == "run":
                self._run(conn, reader, req)
            else:
                wire.send(conn, {"exit_code": 2, "error": f"unknown request {op!r}"})
        except (OSError, wire.WireError):
            pass  # the client went away; its run (if any) was cancelled and its report written

    def status(self) -> dict[str, Any]:
        ready = self.pool is not None and self.pool.ready()
        return {"pid": os.getpid(), "socket": str(self.path), "started_at": self.started.isoformat(),
                "requests": self.requests, "kernel_ready": ready,
                "idle_s": round(time.monotonic() - self.last_activity, 1), "idle_limit_s": self.idle_s}

    def _run(self, conn: socket.socket, reader: wire.Reader, req: dict[str, Any]) -> None:
        problem = check_request(req)
        if problem:
            wire.send(conn, {"exit_code": 2, "error": f"bad request to the opsbook service: {problem}"})
            return
        if req["code"] != self.stamp:
            fresh = code_stamp()
            if fresh != self.stamp:  # the code changed under this process: it must not run it
                self.stopping = "the opsbook code changed"
            wire.send(conn, {"declined": "the service runs another opsbook code" if fresh == self.stamp else
                             "the opsbook code changed since the service started"})
            return
        self.requests += 1
        conn.settimeout(None)
        watcher = threading.Thread(target=self._watch, args=(conn, reader), daemon=True, name="opsbook-cancel")
        with self._lock:
            self._running = conn
        watcher.start()
        answer = {"exit_code": 1, "error": "the service failed to run it"}
        from ..kernels import execute  # noqa: PLC0415

        execute.EARLY_SIGNAL[0] = None
        try:
            answer = self._execute(req)
        finally:
            execute.EARLY_SIGNAL[0] = None
            with self._lock:
                self._running = None
                sent, self._cancel_sent = self._cancel_sent, False
            if sent and answer.get("exit_code") not in (130, 143):
                self._echo_expected = time.monotonic()  # the run had ended: the signal is still on its way
            self.pool.top_up()  # the next kernel warms up now, with the service's own environment
        wire.send(conn, answer)

    def _execute(self, req: dict[str, Any]) -> dict[str, Any]:
        from ...config.file import load  # noqa: PLC0415
        from ...core.errors import OpsbookError, write_error_line  # noqa: PLC0415
        from ..runner import run_runbook  # noqa: PLC0415

        try:
            with as_caller(req["environ"], req["cwd"], req["umask"]):
                config = load(req["config_path"])
                output_dir = Path(req["output_dir"]) if req["output_dir"] else None
                result = run_runbook(req["runbook"], req["target"], req["params"], config=config,
                                     output_dir=output_dir, with_code=req["with_code"],
                                     self_contained=req["self_contained"], fail_on=req["fail_on"], pool=self.pool,
                                     environ=req["environ"])
        except OpsbookError as e:
            return {"exit_code": e.exit_code, "error": str(e)}
        except OSError as e:
            line = write_error_line(e)
            return {"exit_code": 2, "error": line} if line else {"exit_code": 1, "error": f"{type(e).__name__}: {e}"}
        except Exception as e:  # noqa: BLE001 - one bad run must not take the service down
            return {"exit_code": 1, "error": f"the service failed to run it: {type(e).__name__}: {e}"}
        if result.exit_code == 128 + signal.SIGTERM and not self._cancelled_by_client:
            self.stopping = "SIGTERM"  # a stop that arrived during the run: the run is reported, then we stop
        return {"exit_code": result.exit_code, "result": result.to_json()}

    _cancelled_by_client = False

    def _watch(self, conn: socket.socket, reader: wire.Reader) -> None:
        """While a run is in progress, a cancel from its client (or the client going away) interrupts it exactly
        as a signal interrupts a local run: the report is written with status failed; a second cancel kills the
        kernel."""
        self._cancelled_by_client = False
        while True:
            try:
                msg = reader.read()
                signum = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}.get(str(msg.get("cancel")))
                gone = False
            except (OSError, wire.WireError):
                signum, gone = signal.SIGINT, True  # the caller is gone (killed, or its terminal closed)
            with self._lock:
                if self._running is not conn:
                    return
                if signum is not None:
                    self._cancelled_by_client = True
                    self._cancel_sent = True
                    os.kill(os.getpid(), signum)
            if gone:
                # nobody will press Ctrl-C a second time: a run that ignores the interrupt loses its kernel
                deadline = time.monotonic() + GONE_GRACE_S
                while time.monotonic() < deadline:
                    time.sleep(0.1)
                    with self._lock:
                        if self._running is not conn:
                            return
                with self._lock:
                    if self._running is conn:
                        os.kill(os.getpid(), signal.SIGINT)  # the second signal: the kernel is killed
                return

