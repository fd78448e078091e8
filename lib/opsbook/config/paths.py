"""Where things live: the built-in configuration's home, user-given paths, and folders opsbook must write to."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..core.errors import UsageError

CALLER_CWD_ENV = "OPSBOOK_CALLER_CWD"  # set by the runner to the folder `opsbook run` was called from
HOME_ENV = "OPSBOOK_HOME"
RUNBOOKS_ENV = "OPSBOOK_RUNBOOKS"  # the runbooks folder, else the checkout's runbooks/, else ./runbooks


def caller_cwd() -> Path:
    return Path(os.environ.get(CALLER_CWD_ENV) or os.getcwd())


def user_path(spec: str | Path) -> Path:
    """A path parameter as the user meant it: ~ expanded, relative to where they ran opsbook."""
    p = Path(str(spec)).expanduser()
    return p if p.is_absolute() else caller_cwd() / p


def project_checkout() -> Path | None:
    """The source checkout opsbook runs from (the folder with runbooks/ and pyproject.toml), if it is one."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "runbooks").is_dir() and (root / "pyproject.toml").is_file() else None


def builtin_home() -> Path:
    """Where the built-in configuration keeps reports/ and its history store, whatever the current folder:
    $OPSBOOK_HOME, else the project checkout, else the per-user data folder of the embedded server."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser().absolute()
    checkout = project_checkout()
    if checkout is not None:
        return checkout
    return default_home()


def writable_dir(path: str | Path, what: str) -> Path:
    """`path` as an absolute folder that exists (created if need be) and accepts a new file; else a UsageError of
    one line naming `what` (e.g. "--output-dir") and why."""
    p = Path(path).expanduser().absolute()
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=p, prefix=".opsbook-write-test-"):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise UsageError(f"{what} {p} is not a writable folder ({reason})") from None
    return p


def atomic_write_text(path: str | Path, text: str, *, tmp_name: str | None = None) -> None:
    """Write `text` to `path` through a temporary file beside it, replaced in one step; on any failure (a full
    disk) the temporary file is removed, so a failed write never leaves a .tmp that keeps the disk full."""
    path = Path(path)
    tmp = path.with_name(tmp_name or f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_copy(source: str | Path, target: str | Path, mode: int = 0o644) -> None:
    """Copy `source` to `target` atomically, with the same cleanup as atomic_write_text."""
    import shutil  # noqa: PLC0415

    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def runbooks_dir() -> Path:
    """$OPSBOOK_RUNBOOKS, else the repository's runbooks/ next to lib/, else ./runbooks."""
    if os.environ.get(RUNBOOKS_ENV):
        return Path(os.environ[RUNBOOKS_ENV]).absolute()
    repo = Path(__file__).resolve().parents[3] / "runbooks"  # lib/opsbook/config/paths.py -> the checkout
    return repo if repo.is_dir() else Path("runbooks").absolute()


def default_home() -> Path:
    """Where opsbook keeps its embedded servers: $OPSBOOK_HOME, else a per-user data folder."""
    if os.environ.get("OPSBOOK_HOME"):
        return Path(os.environ["OPSBOOK_HOME"]).expanduser()
    if os.geteuid() == 0:
        return Path("/var/lib/opsbook")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "opsbook"
