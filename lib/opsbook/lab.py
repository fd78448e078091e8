"""JupyterLab on the runbooks folder, with OPSBOOK_CONFIG pointing at the configuration in use."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .errors import OpsbookError


def lab_command(config_file: Path | None, *, no_browser: bool = False) -> tuple[list[str], dict[str, str]]:
    """The command line and environment `opsbook lab` starts (separate from launching, for tests)."""
    from .runner import runbooks_dir  # noqa: PLC0415

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


def launch_lab(config_file: Path | None, *, no_browser: bool = False) -> int:
    """Run JupyterLab in the foreground until it exits; returns its exit code."""
    cmd, env = lab_command(config_file, no_browser=no_browser)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0
