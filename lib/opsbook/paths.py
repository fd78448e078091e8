"""Paths that users give as parameters, resolved where they typed them (the kernel runs in runbooks/)."""
from __future__ import annotations

import os
from pathlib import Path

CALLER_CWD_ENV = "OPSBOOK_CALLER_CWD"  # set by the runner to the folder `opsbook run` was called from


def caller_cwd() -> Path:
    return Path(os.environ.get(CALLER_CWD_ENV) or os.getcwd())


def user_path(spec: str | Path) -> Path:
    """A path parameter as the user meant it: ~ expanded, relative to where they ran opsbook."""
    p = Path(str(spec)).expanduser()
    return p if p.is_absolute() else caller_cwd() / p
