"""Why a query could not run, in the user's words, and what would let it: a missing privilege, an absent view or
extension, a column this version lacks, a lock or statement timeout."""
from __future__ import annotations

from ..core.errors import SkipCheck


def skip_reason(exc: BaseException) -> tuple[str, str] | None:
    """(reason, how to enable) for the errors a check degrades on, else None."""
    import psycopg.errors as pe  # noqa: PLC0415
    from sqlalchemy.exc import DBAPIError  # noqa: PLC0415

    if isinstance(exc, SkipCheck):
        text = str(exc)
        reason, _, how = text.partition(";")
        return reason.strip(), how.strip()
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    msg = " ".join(str(orig).split())[:300]
    if isinstance(orig, pe.InsufficientPrivilege):
        return (f"missing privilege: {msg}",
                "grant the monitoring role pg_monitor (or pg_read_all_stats and pg_read_all_settings)")
    if isinstance(orig, (pe.UndefinedTable, pe.UndefinedFunction, pe.UndefinedObject, pe.InvalidSchemaName)):
        return (f"not available on this database: {msg}",
                "install the extension or feature it needs (see the check's description)")
    if isinstance(orig, pe.UndefinedColumn):
        return f"this PostgreSQL version lacks a column it reads: {msg}", "upgrade PostgreSQL or report this"
    if isinstance(orig, pe.LockNotAvailable):
        return f"gave up waiting for a lock (lock_timeout): {msg}", "run again when the lock is released"
    if isinstance(orig, pe.QueryCanceled):
        return f"query cancelled by statement_timeout: {msg}", "raise statement_timeout_ms for this run"
    if isinstance(orig, pe.ObjectNotInPrerequisiteState):
        return f"not ready: {msg}", "add the library to shared_preload_libraries and restart"
    if isinstance(orig, pe.FeatureNotSupported):
        return f"not supported here: {msg}", ""
    return None
