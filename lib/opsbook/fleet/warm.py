"""A warm kernel on every Dask worker: a worker plugin that starts an `opsbook serve` of the worker's own, so that
each target's `opsbook run` there is answered by a kernel started, with opsbook's imports done, before the task
arrived. Each run still gets a fresh kernel; the next one warms up while the worker waits for its next task.

The service is the worker's child, listens on a socket in a private folder of the worker's machine, runs as the
worker's user with the worker's environment (credentials stay the worker's), and exits with the worker. Until it
is ready, or while it is busy (a worker with several threads), a task runs its target cold, as before.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NAME = "opsbook-warm-kernel"

try:
    from distributed import WorkerPlugin
except ImportError:  # pragma: no cover - only imported in distributed mode, where Dask is installed
    WorkerPlugin = object


class WarmKernelPlugin(WorkerPlugin):
    """Registered by `opsbook fleet --scheduler` (once per cluster: idempotent); `socket` is set on the worker."""

    idempotent = True

    def __init__(self):
        self.socket: str | None = None
        self._proc = None
        self._folder: str | None = None

    def setup(self, worker=None):  # noqa: ARG002 - the Dask signature
        self._folder = tempfile.mkdtemp(prefix="opsbook-w-")  # 0700, short enough for a socket path
        self.socket = str(Path(self._folder) / "opsbook.sock")
        log = open(Path(self._folder) / "service.log", "ab")  # noqa: SIM115 - the child keeps it (and the folder)
        env = {k: v for k, v in os.environ.items() if k != "OPSBOOK_NO_SERVICE"}
        self._proc = subprocess.Popen([sys.executable, "-m", "opsbook.run.serve", "--socket", self.socket,
                                       "--idle", "86400", "--parent-pid", str(os.getpid()), "--own-folder"],
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=self._folder)
        log.close()

    def teardown(self, worker=None):  # noqa: ARG002
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=30)
            if self._proc.poll() is None:
                self._proc.kill()
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)


def worker_socket(worker=None) -> str | None:
    """The socket of this Dask worker's service, when the task runs on a worker that has the plugin."""
    if worker is None and "distributed" not in sys.modules:
        return None
    try:
        if worker is None:
            from distributed import get_worker  # noqa: PLC0415

            worker = get_worker()
        plugin = worker.plugins.get(NAME)
    except (ValueError, AttributeError):
        return None
    return getattr(plugin, "socket", None)


def service_status(dask_worker=None) -> dict | None:
    """This worker's service status (`client.run` passes `dask_worker`): runs answered, next kernel warm."""
    from ..run.serve import control  # noqa: PLC0415

    sock = worker_socket(dask_worker)
    return control.status(sock) if sock else None
