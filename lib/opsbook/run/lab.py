"""JupyterLab on the runbooks folder, with OPSBOOK_CONFIG pointing at the configuration in use."""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ..core.errors import OpsbookError


def lab_command(config_file: Path | None, *, no_browser: bool = False) -> tuple[list[str], dict[str, str]]:
    """The command line and environment `opsbook lab` starts (separate from launching, for tests)."""
    from ..config.paths import runbooks_dir  # noqa: PLC0415

    if importlib.util.find_spec("jupyterlab") is None:
        raise OpsbookError("JupyterLab is not installed here; install it with: pip install -e '.[lab]'")
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={runbooks_dir()}"]
    if no_browser:
        cmd.append("--no-browser")
    if os.geteuid() == 0:
        cmd.append("--allow-root")  # Jupyter refuses root without it; PostgreSQL runs as its own account anyway
    env = dict(os.environ)
    if config_file is not None:
        env["OPSBOOK_CONFIG"] = str(Path(config_file).absolute())
    return cmd, env


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, a dropped SSH session
SHUTDOWN_DEADLINE_S = 30.0  # Jupyter asks each kernel to shut down (5 s each at most) before it exits


def launch_lab(config_file: Path | None, *, no_browser: bool = False) -> int:
    """Run JupyterLab in the foreground until it exits; returns its exit code, or 128 + the signal that stopped it.

    Jupyter runs in its own session, so a Ctrl-C in the terminal reaches only this process (Jupyter would otherwise
    ask "Shut down this Jupyter server?" and wait). Ctrl-C, SIGTERM or SIGHUP are passed on as SIGTERM, on which
    Jupyter shuts its kernels down (their exit handlers run) and exits; only past the deadline is it killed."""
    cmd, env = lab_command(config_file, no_browser=no_browser)
    return supervise(subprocess.Popen(cmd, env=env, start_new_session=True))


def supervise(proc: subprocess.Popen, deadline_s: float = SHUTDOWN_DEADLINE_S) -> int:
    """Wait for `proc`; a stop signal becomes SIGTERM to it, then SIGKILL if it has not exited by the deadline."""
    stopped: list[int] = []
    escalate = threading.Timer(deadline_s, lambda: _send(proc, signal.SIGKILL))
    escalate.daemon = True

    def on_signal(signum: int, _frame) -> None:
        if not stopped:
            stopped.append(signum)
            _send(proc, signal.SIGTERM)
            escalate.start()

    saved = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        code = proc.wait()
    finally:
        escalate.cancel()
        for s, previous in saved.items():
            signal.signal(s, previous)
    return 128 + stopped[0] if stopped else code


def _send(proc: subprocess.Popen, signum: int) -> None:
    try:
        proc.send_signal(signum)
    except ProcessLookupError:  # it exited in the meantime
        pass
