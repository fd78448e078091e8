"""Execute a parameterized notebook on a warm kernel with papermill's client, writing nothing until the end."""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
from pathlib import Path
from typing import Any, Iterator

from .warm import KERNEL_NAME, START_TIMEOUT_S, KernelError, WarmKernel

LOG = logging.getLogger("opsbook.run.kernels")
SIGNALS = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}
# A signal meant for the run that arrived before the run could be interrupted (the service's cancel during the
# configuration load or the wait for a kernel): `interruptible` takes it on entry. Set and cleared by the service.
EARLY_SIGNAL: list[int | None] = [None]


@contextlib.contextmanager
def interruptible(kernel: WarmKernel) -> Iterator[dict[str, Any]]:
    """While the block runs, SIGINT/SIGTERM interrupt the kernel (the running cell's finally-blocks clean up)
    instead of killing this process; a second signal kills the kernel. Yields {"signal": name or None}."""
    state: dict[str, Any] = {"signal": None, "signum": None}
    if threading.current_thread() is not threading.main_thread():
        yield state  # signal handlers belong to the main thread; a worker thread's caller handles signals
        return

    def handler(signum, frame):  # noqa: ARG001
        if state["signum"] is None:
            state["signum"], state["signal"] = signum, SIGNALS.get(signum, str(signum))
            kernel.interrupt()
        else:
            kernel.shutdown_now()

    saved = {s: signal.signal(s, handler) for s in SIGNALS}
    early, EARLY_SIGNAL[0] = EARLY_SIGNAL[0], None
    if early is not None:
        handler(early, None)
    try:
        yield state
    finally:
        for s, previous in saved.items():
            signal.signal(s, previous)


def _client_class():
    from nbclient.exceptions import CellExecutionError  # noqa: PLC0415
    from papermill.clientwrap import PapermillNotebookClient  # noqa: PLC0415

    class StoppableClient(PapermillNotebookClient):
        """papermill's cell loop, which also stops before the next cell once a signal arrived."""

        stopped: dict[str, Any] = {}
        prelude: str = ""

        def papermill_execute_cells(self):
            if self.prelude:  # the run's environment and folder, through this client (no second client to wait for)
                reply = self.wait_for_reply(self.kc.execute(self.prelude, silent=True, store_history=False))
                content = (reply or {}).get("content", {})
                if content.get("status") != "ok":
                    raise KernelError(f"kernel set-up failed: {content.get('ename')}: {content.get('evalue')}")
            for index, cell in enumerate(self.nb.cells):
                if self.stopped.get("signal"):
                    break
                try:
                    self.nb_man.cell_start(cell, index)
                    self.execute_cell(cell, index)
                except CellExecutionError as ex:
                    self.nb_man.cell_exception(self.nb.cells[index], cell_index=index, exception=ex)
                    break
                finally:
                    self.nb_man.cell_complete(self.nb.cells[index], cell_index=index)

    return StoppableClient


def run_notebook(path: Path, parameters: dict[str, Any], kernel: WarmKernel, *, env: dict[str, str],
                 cwd: Path, replace_env: bool = False) -> tuple[Any, dict[str, Any] | None, str | None]:
    """Run `path` with `parameters` injected on `kernel`; returns (executed notebook, error or None, signal name).

    papermill's cell bookkeeping (start/end times, the error cell markers) is kept; its per-cell saves are not:
    the caller writes the notebook once. Never raises for a failing cell or a dead kernel. With `replace_env`,
    `env` is the kernel's whole environment for the run, else it is added to the one the kernel started with.
    """
    from papermill.engines import NotebookExecutionManager  # noqa: PLC0415
    from papermill.exceptions import PapermillExecutionError  # noqa: PLC0415
    from papermill.execute import prepare_notebook_metadata, raise_for_execution_errors, remove_error_markers  # noqa: PLC0415
    from papermill.iorw import load_notebook_node  # noqa: PLC0415
    from papermill.parameterize import parameterize_notebook  # noqa: PLC0415

    nb = load_notebook_node(str(path))
    if parameters:
        nb = parameterize_notebook(nb, parameters, kernel_name=KERNEL_NAME, language="python")
    nb = remove_error_markers(prepare_notebook_metadata(nb, str(path), None))
    manager = NotebookExecutionManager(nb, output_path=None, progress_bar=False, log_output=False,
                                       autosave_cell_every=0)
    error = None
    with interruptible(kernel) as stopped:
        try:
            prelude = kernel.setup_code(env, cwd, replace=replace_env)
            manager.notebook_start()
            client = _client_class()(manager, km=kernel.km, kernel_name=KERNEL_NAME, log=LOG,
                                     log_output=False, startup_timeout=START_TIMEOUT_S)
            client.stopped, client.prelude = stopped, prelude
            try:
                client.execute(cleanup_kc=False)
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()  # left connected, it would steal a later kernel's replies
                manager.cleanup_pbar()
                manager.notebook_complete()
            raise_for_execution_errors(manager.nb, None)
        except PapermillExecutionError as e:
            error = {"ename": e.ename, "evalue": e.evalue, "source": e.source, "traceback": e.traceback,
                     "anchor": True}
        except Exception as e:  # noqa: BLE001 - a dead kernel, a start-up failure: the run failed, report it
            tail = kernel.log_tail()
            error = {"ename": type(e).__name__, "evalue": " ".join(str(e).split())[:500], "source": None,
                     "traceback": ["kernel output (last lines):", *tail] if tail else []}
    if stopped["signal"]:
        error = {**(error or {"source": None, "traceback": []}), "ename": "Interrupted",
                 "evalue": f"interrupted by {stopped['signal']}"}
    return manager.nb, error, stopped["signal"]
