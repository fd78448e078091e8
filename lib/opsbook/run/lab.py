"""JupyterLab for `opsbook lab`: on a working copy of a runbook, or on the runbooks folder with the templates
guarded; OPSBOOK_CONFIG pointing at the configuration in use, and the project's Lab settings."""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from ..core.errors import OpsbookError

# Prepended to JUPYTER_CONFIG_PATH: its labconfig/default_setting_overrides.json changes Lab's defaults (no news
# pop-up, no update check) in this Lab only; the user's own settings and the environment's overrides still apply.
SETTINGS_DIR = Path(__file__).with_name("labsettings")
CONTENTS_MANAGER = "opsbook.run.labcontents.TemplateGuard"


def open_lab(config, config_file: Path | None, runbook: str | None = None, target: str = "demo",
             params: dict[str, Any] | None = None, *, no_browser: bool = False,
             announce: Callable[[Path], None] = lambda copy: None) -> int:
    """`opsbook lab`: with a runbook, check its parameters as `opsbook run` does, write the working copy and open
    Lab on it (rooted at the reports folder); without, Lab on the runbooks folder. Returns Lab's exit code."""
    require_jupyterlab()  # before a copy is written
    notebook = None
    if runbook is not None:
        from .workcopy import make_working_copy  # noqa: PLC0415

        notebook = make_working_copy(runbook, target, params, config=config)
        announce(notebook)
    return launch_lab(config_file, no_browser=no_browser, notebook=notebook,
                      root=Path(config.reports_dir).absolute() if notebook else None)


def lab_command(config_file: Path | None, *, no_browser: bool = False, notebook: Path | None = None,
                root: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line and environment `opsbook lab` starts (separate from launching, for tests): Lab rooted at
    `root` (default: the runbooks folder) and opened on `notebook` if given; the templates guarded either way."""
    from ..config.paths import runbooks_dir  # noqa: PLC0415

    require_jupyterlab()
    root = Path(root or runbooks_dir()).absolute()
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}",
           f"--ServerApp.contents_manager_class={CONTENTS_MANAGER}",
           f"--TemplateGuard.templates_dir={runbooks_dir()}"]
    if notebook is not None:  # the browser opens on the copy (and the URL printed leads to it)
        cmd.append(f"--LabApp.default_url=/lab/tree/{quote(Path(notebook).relative_to(root).as_posix())}")
    if no_browser:
        cmd.append("--no-browser")
    if os.geteuid() == 0:
        cmd.append("--allow-root")  # Jupyter refuses root without it; PostgreSQL runs as its own account anyway
    env = dict(os.environ)
    if config_file is not None:
        env["OPSBOOK_CONFIG"] = str(Path(config_file).absolute())
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(SETTINGS_DIR), *filter(None, [env.get("JUPYTER_CONFIG_PATH")])])
    return cmd, env


def require_jupyterlab() -> None:
    if importlib.util.find_spec("jupyterlab") is None:
        raise OpsbookError("JupyterLab is not installed here; install it with: pip install -e '.[lab]'")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, a dropped SSH session
SHUTDOWN_DEADLINE_S = 30.0  # Jupyter asks each kernel to shut down (5 s each at most) before it exits


def launch_lab(config_file: Path | None, *, no_browser: bool = False, notebook: Path | None = None,
               root: Path | None = None) -> int:
    """Run JupyterLab in the foreground until it exits; returns its exit code, or 128 + the signal that stopped it.

    Jupyter runs in its own session, so a Ctrl-C in the terminal reaches only this process (Jupyter would otherwise
    ask "Shut down this Jupyter server?" and wait). Ctrl-C, SIGTERM or SIGHUP are passed on as SIGTERM, on which
    Jupyter shuts its kernels down (their exit handlers run) and exits; only past the deadline is it killed."""
    cmd, env = lab_command(config_file, no_browser=no_browser, notebook=notebook, root=root)
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
