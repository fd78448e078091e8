"""The `opsbook` kernelspec: this environment's Python with ipykernel, for the runbooks opened from another
JupyterLab or JupyterHub."""
from __future__ import annotations

import platform
import sys
import tempfile
from pathlib import Path

from .kernels.warm import KERNEL_ARGUMENTS

KERNEL_NAME = "opsbook"
DISPLAY_NAME = f"opsbook (Python {sys.version_info.major}.{sys.version_info.minor})"


def install_kernelspec(prefix: str | Path | None = None, config_file: str | Path | None = None) -> Path:
    """Install (or replace) `<prefix>/share/jupyter/kernels/opsbook`, prefix defaulting to sys.prefix; returns its
    folder. Its argv is this interpreter with ipykernel; its env holds OPSBOOK_CONFIG (absolute) only when a
    configuration file is given, and nothing else: the kernel reads secrets where libpq does, never from here."""
    from ipykernel.kernelspec import write_kernel_spec  # noqa: PLC0415
    from jupyter_client.kernelspec import KernelSpecManager  # noqa: PLC0415

    overrides: dict = {"display_name": DISPLAY_NAME}
    if config_file is not None:
        overrides["env"] = {"OPSBOOK_CONFIG": str(Path(config_file).expanduser().absolute())}
    # as ipykernel's own install: debugpy warns about frozen modules unless they are off
    python_arguments = ["-Xfrozen_modules=off"] if platform.python_implementation() == "CPython" else None
    with tempfile.TemporaryDirectory(prefix="opsbook-kernelspec-") as tmp:
        source = write_kernel_spec(Path(tmp) / KERNEL_NAME, overrides=overrides, extra_arguments=KERNEL_ARGUMENTS,
                                   python_arguments=python_arguments)
        installed = KernelSpecManager().install_kernel_spec(source, kernel_name=KERNEL_NAME,
                                                            prefix=str(prefix or sys.prefix))
    return Path(installed)
