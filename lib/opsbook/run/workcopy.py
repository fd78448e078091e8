"""The working copy JupyterLab opens: a dated, parameterized copy of a runbook in the reports folder, never the
template itself."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from ..config.file import Config
from ..config.paths import atomic_write_text, runbooks_dir, writable_dir
from ..core.errors import UsageError
from .runner import check_run, reserve_stem

LAB_FOLDER = "lab"  # <reports>/lab/<YYYY-MM-DD>/: beside the dated report folders, which retention and the index read


def make_working_copy(name: str, target: str = "demo", params: dict[str, Any] | None = None, *,
                      config: Config) -> Path:
    """Validate the parameters as `opsbook run` does (a UsageError, exit 2, before anything is written), then write
    `<reports>/lab/<YYYY-MM-DD>/<runbook>--<target>--<HHMMSS>Z.ipynb`: the template with papermill's
    injected-parameters cell, the same cell the command line's run gets."""
    path, _values, _tgt, injected = check_run(name, target, params, config=config)
    root = writable_dir(config.reports_dir, "the reports folder")
    if root.resolve().is_relative_to(runbooks_dir().resolve()):
        raise UsageError(f"the reports folder {root} is inside the runbooks folder {runbooks_dir()}: set "
                         "[reports] dir in opsbook.toml to a folder outside it")
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    stem = reserve_stem(root / LAB_FOLDER, name, target, started)
    copy = stem.with_name(stem.name + ".ipynb")
    try:
        atomic_write_text(copy, _parameterized(path, injected), tmp_name=f".{copy.name}.tmp")
    except BaseException:
        copy.unlink(missing_ok=True)  # the empty file reserve_stem made
        raise
    return copy


def _parameterized(template: Path, injected: dict[str, Any]) -> str:
    import nbformat  # noqa: PLC0415
    from papermill.iorw import load_notebook_node  # noqa: PLC0415
    from papermill.parameterize import parameterize_notebook  # noqa: PLC0415

    from .kernels.warm import KERNEL_NAME  # noqa: PLC0415

    nb = load_notebook_node(str(template))  # as the runner loads it (kernels/execute.py)
    if injected:
        nb = parameterize_notebook(nb, injected, kernel_name=KERNEL_NAME, language="python")
    return nbformat.writes(nb)
