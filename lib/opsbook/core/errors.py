"""One exception hierarchy: every error opsbook raises on purpose."""
from __future__ import annotations

import errno

# A full disk, a read-only or vanished folder, no permission: what the user must fix, said in one line (exit 2).
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EFBIG}


def write_error_line(e: OSError) -> str | None:
    """"cannot write PATH: reason" for an OSError of the kinds above, else None (a bug: let it be seen)."""
    if e.errno not in WRITE_ERRORS:
        return None
    where = f" {e.filename}" if e.filename else ""
    return f"cannot write{where}: {e.strerror}"


class OpsbookError(Exception):
    """Base class; the message is one line that says what to do next."""

    exit_code = 1


class UsageError(OpsbookError):
    """Bad input from the user: unknown name, wrong type, unreadable config (exit 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """opsbook.toml is missing, unreadable or inconsistent."""


class UnknownTarget(UsageError):
    """A target name that the configuration does not define."""

    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, known
        super().__init__(f"target {name!r} not found in the configuration; known: {', '.join(known) or 'none'}")


class UnknownRunbook(UsageError):
    """A runbook name with no notebook in runbooks/."""

    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, known
        super().__init__(f"runbook {name!r} not found; known: {', '.join(known) or 'none'}")


class ParameterError(UsageError):
    """A runbook parameter that is unknown or of the wrong type."""


class StoreError(UsageError):
    """The history store cannot be opened or written: locked, full, unwritable, or its driver missing (exit 2)."""


class EmbeddedServerError(OpsbookError):
    """The embedded PostgreSQL server could not be initialised, started or stopped."""


class ConnectError(OpsbookError):
    """A database could not be reached; `kind` says why (see opsbook.database.session.classify_connect_error)."""

    def __init__(self, message: str, kind: str, target: str):
        self.kind, self.target = kind, target
        super().__init__(message)


class SkipCheck(OpsbookError):
    """Raised by a check's data function when it cannot run here; becomes an info finding."""
