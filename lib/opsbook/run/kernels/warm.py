"""Kernels started ahead of the run that needs them, opsbook's heavy imports done, each used for one run only."""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from .zygote import WARM_UP

KERNEL_NAME = "python3"
START_TIMEOUT_S = 60
# No IPython history database: a run's cells are not history, and sqlite on disk is slow and would keep query texts.
KERNEL_ARGUMENTS = ["--HistoryManager.enabled=False"]


class KernelError(RuntimeError):
    """A kernel did not start, or did not take its per-run set-up."""


def _manager_class():
    from jupyter_client.manager import KernelManager  # noqa: PLC0415
    from traitlets import Type  # noqa: PLC0415

    class OneRunKernelManager(KernelManager):
        """A synchronous manager (usable from any thread) whose clients are asynchronous, as nbclient needs, and
        ready as soon as the kernel answers (kernels/clients.py)."""

        client_class = "opsbook.run.kernels.clients.QuickAsyncClient"
        blocking_class = Type(klass=object, default_value="opsbook.run.kernels.clients.QuickBlockingClient")

    return OneRunKernelManager


class WarmKernel:
    """One kernel process: started and warmed by `start()`, prepared for one run, then shut down for good."""

    def __init__(self, cwd: Path, factory: "KernelFactory | None" = None):
        self.cwd = Path(cwd)
        self.factory = factory
        self.folder = Path(tempfile.mkdtemp(prefix="opsbook-kernel-"))
        self.log_path = self.folder / "kernel.log"
        self.km = None
        self.used = False
        self.error: BaseException | None = None

    def start(self) -> "WarmKernel":
        """Launch the kernel (its output to `log_path`) and run the warm-up imports; errors kept in `error`."""
        try:
            km = _manager_class()(kernel_name=KERNEL_NAME)
            km.connection_file = str(self.folder / "connection.json")
            if self.factory is not None:
                km._kernel_spec = self.factory.kernel_spec()  # launched by forking the factory
            with open(self.log_path, "ab") as log:
                km.start_kernel(extra_arguments=KERNEL_ARGUMENTS, cwd=str(self.cwd), stdout=log, stderr=log)
            self.km = km
            self.execute(WARM_UP)
        except BaseException as e:  # noqa: BLE001 - reported when the run takes this kernel
            self.error = e
            self.log_tail = self._log_tail()
        return self

    log_tail = ""  # the last line the kernel wrote before it failed to start (why, usually)

    def _log_tail(self) -> str:
        try:
            lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return ""
        return " ".join(lines[-1].split())[:300] if lines else ""

    def alive(self) -> bool:
        """Whether the kernel process still runs (one killed while waiting in the pool does not)."""
        try:
            return self.km is not None and bool(self.km.is_alive())
        except Exception:  # noqa: BLE001 - a manager in a broken state: not a kernel to run in
            return False

    @property
    def pid(self) -> int | None:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        return getattr(process, "pid", None)

    def execute(self, code: str, timeout: float = START_TIMEOUT_S) -> None:
        """Run `code` silently in the kernel through a short-lived client; KernelError if it raised."""
        kc = self.km.blocking_client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=timeout)
            reply = kc.execute_interactive(code, silent=True, store_history=False, timeout=timeout,
                                           output_hook=lambda msg: None)
        finally:
            kc.stop_channels()  # a client left connected would take replies meant for a later kernel's client
        content = reply.get("content", {})
        if content.get("status") != "ok":
            raise KernelError(f"kernel set-up failed: {content.get('ename')}: {content.get('evalue')}")

    def prepare(self, env: dict[str, str], cwd: Path, *, replace: bool = False) -> None:
        """Set the run's environment and working directory inside the kernel (it was started without them).

        With `replace`, `env` becomes the kernel's whole environment (the service runs a caller's request with
        the caller's environment, not the one the service was started with)."""
        self.execute(self.setup_code(env, cwd, replace=replace))

    def setup_code(self, env: dict[str, str], cwd: Path, *, replace: bool = False) -> str:
        """The code `prepare` runs, for a caller that runs it through its own client (one client per run saves
        the second client's wait for a quiet kernel); marks the kernel used."""
        if self.error is not None:
            said = f" (its log: {self.log_tail})" if self.log_tail else ""
            raise KernelError(f"the kernel did not start: {type(self.error).__name__}: {self.error}{said}")
        if self.used:
            raise KernelError("a kernel runs one runbook only")  # no state may leak between runs or targets
        self.used = True
        clear = "_os.environ.clear()\n" if replace else ""
        return f"import os as _os\n{clear}_os.environ.update({dict(env)!r})\n_os.chdir({str(cwd)!r})\ndel _os\n"

    def interrupt(self) -> None:
        """SIGINT to the kernel: the running cell raises KeyboardInterrupt, its finally-blocks run."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def shutdown_now(self) -> None:
        """SIGKILL, safe inside a signal handler: the client sees a dead kernel and the run ends."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @property
    def kernel_pid(self) -> int | None:
        """The kernel's own process: `pid`, or for a factory's kernel the fork its launcher stands in for."""
        try:
            return int((self.folder / "connection.json.pid").read_text())  # written by the launcher
        except (OSError, ValueError):
            return self.pid

    def peak_rss_kb(self) -> int:
        """The kernel's peak resident memory so far (VmHWM), 0 when it is gone or unknown."""
        try:
            with open(f"/proc/{self.kernel_pid}/status") as f:
                return next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
        except (OSError, ValueError, TypeError):
            return 0

    def log_tail(self, lines: int = 20) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return []

    def shutdown(self) -> None:
        """Kill the kernel at once (its work is done or abandoned) and remove its files."""
        try:
            if self.km is not None and self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
            if self.km is not None:
                self.km.cleanup_resources()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class KernelFactory:
    """The kernel factory process (`zygote.py`): heavy imports done once, a kernel forked per run."""

    def __init__(self):
        import subprocess  # noqa: PLC0415
        import sys  # noqa: PLC0415

        from .zygote import new_socket_path  # noqa: PLC0415

        self.path = new_socket_path()
        self.log_path = Path(self.path).parent / "factory.log"
        self._ready = threading.Event()
        self.error: str | None = None
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "opsbook.run.kernels.zygote", self.path,
                                          str(os.getpid())], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=log)
        threading.Thread(target=self._wait_ready, daemon=True, name="opsbook-factory-start").start()

    def _wait_ready(self) -> None:
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            self.error = f"the kernel factory exited at start (code {self.proc.wait()})"
        self._ready.set()

    def kernel_spec(self):
        from jupyter_client.kernelspec import KernelSpec  # noqa: PLC0415

        if not self._ready.wait(START_TIMEOUT_S) or self.error:
            raise KernelError(self.error or f"the kernel factory was not ready in {START_TIMEOUT_S} s")
        import sys  # noqa: PLC0415

        return KernelSpec(argv=[sys.executable, "-m", "opsbook.run.kernels.forked", "-f", "{connection_file}"],
                          display_name="Python 3 (opsbook, forked)", language="python", interrupt_mode="signal",
                          env={"OPSBOOK_KERNEL_FACTORY": self.path}, metadata={})

    def close(self) -> None:
        if os.environ.get("OPSBOOK_KEEP_FACTORY_LOG"):
            print(self.log_path.read_text(errors="replace"))
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001 - a stuck factory
                self.proc.kill()
        shutil.rmtree(Path(self.path).parent, ignore_errors=True)


class KernelPool:
    """Keeps `size` kernels starting or ready; `take()` hands one out and starts its replacement at once.

    `opsbook run` uses a pool of one without a replacement; a worker of `run_many` keeps one spare, so the next
    kernel warms up while the current run executes.
    """

    def __init__(self, size: int = 1, *, cwd: Path | None = None, refill: bool = True, factory: bool = False):
        from ...config.paths import runbooks_dir  # noqa: PLC0415

        self.size, self.refill = size, refill
        # long-lived pools fork their kernels from a factory that did the imports once (a CPU-bound fleet's
        # win); a one-run pool would only pay for the factory's start
        self.factory = KernelFactory() if factory else None
        self.cwd = Path(cwd or runbooks_dir())
        self._lock = threading.Lock()
        self._starting: list[tuple[WarmKernel, threading.Thread]] = []
        self._retiring: list[threading.Thread] = []
        self.kernel_peak_kb = 0  # the largest peak RSS of the kernels retired (read before they are killed)
        self._closed = False
        for _ in range(size):
            self._spawn()

    def _spawn(self) -> None:
        kernel = WarmKernel(self.cwd, self.factory)
        thread = threading.Thread(target=kernel.start, name="opsbook-kernel-start", daemon=True)
        thread.start()
        self._starting.append((kernel, thread))

    def take(self) -> WarmKernel:
        """The oldest kernel, waited for until warm; a replacement starts right away when `refill`."""
        with self._lock:
            if self._closed:
                raise KernelError("the kernel pool is closed")
            if not self._starting:
                self._spawn()
            kernel, thread = self._starting.pop(0)
            if self.refill:
                self._spawn()
        thread.join(START_TIMEOUT_S * 2)
        if (kernel.error is not None or not kernel.alive()) and not thread.is_alive() and not self._closed:
            # it died before the run began (starting, or waiting in the pool): nothing of the run happened in it,
            # so one fresh kernel more; its error, if any, is the run's
            kernel.shutdown()
            kernel = WarmKernel(self.cwd, self.factory).start()
        return kernel

    def retire(self, kernel: WarmKernel) -> None:
        """Shut a used kernel down in the background (the report renders meanwhile); `close()` waits for it."""
        self.kernel_peak_kb = max(self.kernel_peak_kb, kernel.peak_rss_kb())
        thread = threading.Thread(target=kernel.shutdown, name="opsbook-kernel-stop", daemon=True)
        thread.start()
        with self._lock:
            self._retiring = [t for t in self._retiring if t.is_alive()] + [thread]

    def top_up(self) -> None:
        """Start kernels until `size` are starting or ready (a service refills between requests, not during one,
        so a new kernel never inherits a caller's environment)."""
        with self._lock:
            while not self._closed and len(self._starting) < self.size:
                self._spawn()

    def ready(self) -> bool:
        """Whether a kernel is warm and waiting, so that `take()` returns at once."""
        with self._lock:
            return any(not t.is_alive() for _, t in self._starting)

    def wait_ready(self) -> None:
        """Block until every kernel in the pool has started and warmed up (a long-lived caller's idle time)."""
        with self._lock:
            threads = [t for _, t in self._starting]
        for thread in threads:
            thread.join(START_TIMEOUT_S * 2)

    def close(self) -> None:
        """Shut down every kernel not handed out, and wait for the retired ones to be gone."""
        with self._lock:
            self._closed = True
            pending, self._starting = self._starting, []
            retiring, self._retiring = self._retiring, []
        for kernel, thread in pending:
            thread.join(START_TIMEOUT_S * 2)
            kernel.shutdown()
        for thread in retiring:
            thread.join(START_TIMEOUT_S)
        if self.factory is not None:
            self.factory.close()

    def __enter__(self) -> "KernelPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
