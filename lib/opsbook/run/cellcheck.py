"""In a notebook kernel, the parameters cell is checked as `opsbook run` checks `-p`; a bad value stops in one line."""
from __future__ import annotations

import os
import sys
import weakref
from typing import Any

from ..core.errors import UsageError

RUNNER_ENV = "OPSBOOK_REPORT_STEM"  # set by the runner (and nbval's run): its parameters were checked before
_LIVE: weakref.WeakSet = weakref.WeakSet()  # the Runbooks this kernel built: a later bad setup makes them stale


class CellUsageError(UsageError):
    """Bad input met in a notebook cell: IPython shows the CLI's one line instead of a traceback."""

    def __init__(self, message: str):
        super().__init__(message)
        self.line = f"opsbook: error: {' '.join(str(message).split())}"

    def _render_traceback_(self) -> list[str]:  # IPython's hook: these lines replace the traceback
        return [self.line]


def user_namespace() -> dict[str, Any] | None:
    """The variables of the IPython kernel this runs in (the parameters cell's), else None (plain Python)."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython  # noqa: PLC0415

    shell = get_ipython()
    return None if shell is None else shell.user_ns


def in_notebook() -> bool:
    """A kernel a person steps through (JupyterLab, nbclient), not the runner's, which checked before it started."""
    return user_namespace() is not None and not os.environ.get(RUNNER_ENV)


def check_parameters(name: str, target: str, config) -> dict[str, Any]:
    """The parameters cell's current values, checked by the runner's own rules (declared types and bounds,
    thresholds, the runbook's preflight, the target); raises CellUsageError with the CLI's message."""
    from ..config import params as paramspec  # noqa: PLC0415
    from .runner import check_run, runbook_path  # noqa: PLC0415

    ns = user_namespace() or {}
    try:
        declared = paramspec.describe(runbook_path(name))
        raw = {p.name: ns[p.name] for p in declared if p.name != "target" and p.name in ns}
        return check_run(name, target, raw, config=config)[1]
    except UsageError as e:
        raise CellUsageError(str(e)) from None


def quiet(error: UsageError) -> CellUsageError:
    """A usage error met while setting up in a notebook, as the one-line kind; earlier runs of this kernel go stale
    so that a later cell cannot show or change anything with the parameters of before."""
    stop = error if isinstance(error, CellUsageError) else CellUsageError(str(error))
    for rb in list(_LIVE):
        rb.__dict__["stale"] = CellUsageError(f"{stop.args[0]} (fix the parameters cell, run it, then the cell "
                                              "that creates the Runbook)")
    return stop


def track(rb) -> None:
    _LIVE.add(rb)
