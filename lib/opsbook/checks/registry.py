"""The check registry: ids, concerns, documented thresholds, and running one check safely."""
from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from ..core.errors import ParameterError
from ..core.findings import CONNECTION_LOST, NOT_JUDGED, Finding, Severity, skipped
from ..core.redact import redact_sql
from ..database.degraded import skip_reason
from . import standby

# Tests set OPSBOOK_STRICT=1 (tests/conftest.py; kernels inherit it): an unexpected error in a check re-raises
# there, so bugs stay loud; in production it becomes a finding of that check and the other checks run.
STRICT_ENV = "OPSBOOK_STRICT"


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Threshold:
    """A named, documented default: its unit and where the number comes from."""

    name: str
    default: Any
    unit: str
    source: str
    help: str = ""


@dataclass
class CheckContext:
    """What a check's data function may use: the session, the target, the runbook's parameters."""

    db: Any  # opsbook.database.session.Session
    target: Any  # opsbook.config.file.Target
    params: dict[str, Any] = field(default_factory=dict)
    config: Any = None  # opsbook.config.file.Config


@dataclass(frozen=True)
class Check:
    """`data(ctx) -> DataFrame` gathers rows; `judge(df, **thresholds) -> [Finding]` decides."""

    id: str
    description: str
    judge: Callable[..., list[Finding]]
    data: Callable[[CheckContext], Any] | None = None
    thresholds: tuple[Threshold, ...] = ()
    queries: tuple[str, ...] = ()  # SQL file names it uses, for the loader/file agreement test
    runbooks: tuple[str, ...] = ()

    @property
    def concern(self) -> str:
        return self.id.split(".", 1)[0]

    def defaults(self) -> dict[str, Any]:
        return {t.name: t.default for t in self.thresholds}

    def resolve_thresholds(self, *layers: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults, overridden by each layer in turn (config file, then target, then parameter)."""
        out = self.defaults()
        for layer in layers:
            for key, value in (layer or {}).items():
                if key not in out:
                    raise ParameterError(f"check {self.id!r} has no threshold {key!r}; it has: {', '.join(out)}")
                default = out[key]
                if isinstance(default, (int, float)) and not isinstance(default, bool):
                    if isinstance(value, bool) or not isinstance(value, (int, float)):
                        raise ParameterError(f"threshold {self.id}.{key} must be a number, got {value!r}")
                out[key] = value
        from ..config.bounds import check_thresholds  # noqa: PLC0415 - finite, not negative, warning before critical

        check_thresholds(self.id, self.defaults(), out)
        return out


@dataclass
class CheckResult:
    check: Check
    data: Any  # DataFrame or None
    findings: list[Finding]
    duration_ms: float
    thresholds: dict[str, Any]
    lost: str | None = None  # the connection died during this check: one line saying how


REGISTRY: dict[str, Check] = {}


def register(check: Check) -> Check:
    if check.id in REGISTRY and REGISTRY[check.id] is not check:
        raise ValueError(f"check id {check.id!r} registered twice")
    REGISTRY[check.id] = check
    return check


def connection_lost(exc: BaseException) -> str | None:
    """One line saying how the connection died, when `exc` means the session is gone (server stopped or crashed,
    backend terminated, network reset); else None."""
    import psycopg  # noqa: PLC0415
    import psycopg.errors as pe  # noqa: PLC0415
    from sqlalchemy.exc import DBAPIError  # noqa: PLC0415

    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        pass
    elif isinstance(orig, (pe.AdminShutdown, pe.CrashShutdown, pe.CannotConnectNow, pe.ConnectionException)):
        pass
    elif isinstance(orig, psycopg.OperationalError) and (
            getattr(orig, "sqlstate", None) is None or str(getattr(orig, "sqlstate", "")).startswith("08")):
        pass  # libpq's own errors carry no SQLSTATE: "server closed the connection unexpectedly", "consuming input"
    else:
        return None
    return (redact_sql(" ".join(str(orig).split())) or "")[:200] or type(orig).__name__


def lost_finding(check_id: str, how: str, *, cut_off: bool = False) -> Finding:
    """The finding of a check that the lost connection stopped (or, `cut_off`, that never got to run)."""
    reason = f"{CONNECTION_LOST}: " + ("not run, the session died before it" if cut_off else how)
    return Finding(check_id, Severity.INFO, f"not judged: {reason}", skipped=reason,
                   detail="" if cut_off else "the session to the database ended while this check ran",
                   remediation="see connectivity.unreachable: is the server up? Then run the runbook again")


def failed_finding(check_id: str, exc: BaseException) -> Finding:
    """An unexpected error in a check, as a finding of that check; the traceback goes in the detail."""
    error = f"{type(exc).__name__}: " + (redact_sql(" ".join(str(exc).split())) or "")[:300]
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    where = " <- ".join(f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}" for f in reversed(frames))
    return Finding(check_id, Severity.WARNING,
                   f"this check failed: {error}; the rest of the report is valid; please report it",
                   detail=f"traceback (innermost first): {where}", value=type(exc).__name__,
                   skipped=f"{NOT_JUDGED}: {error}",
                   remediation="report it with this finding's detail and the server version; until fixed, judge "
                               "this concern by hand (its SQL is in lib/opsbook/sql/)")


_UNSET = object()


def run_check(check: Check, ctx: CheckContext, thresholds: dict[str, Any], data: Any = _UNSET) -> CheckResult:
    """Gather (unless `data` is given) and judge one check. A missing privilege/extension/feature becomes an info
    finding; a lost connection a `connection lost` finding (and `lost` set); any other error a warning finding of
    this check (the others still run), except in strict mode (OPSBOOK_STRICT=1), where it re-raises."""
    t0 = time.perf_counter()
    lost = None
    try:
        if data is _UNSET:
            data = check.data(ctx) if check.data else None
        findings = check.judge(data, **thresholds)
    except Exception as e:  # noqa: BLE001 - degrade on the known kinds; isolate the rest unless strict
        data = None if data is _UNSET else data
        why = skip_reason(e)
        lost = connection_lost(e) if why is None else None
        if why is not None:
            findings = [skipped(check.id, *why)]
        elif lost is not None:
            findings = [lost_finding(check.id, lost)]
        elif strict():
            raise
        else:
            findings = [failed_finding(check.id, e)]
    if lost is None:  # on a standby, advice that writes is for the primary (its skip reasons' too)
        findings = standby.place(findings, getattr(ctx, "db", None))
    return CheckResult(check, data, findings, (time.perf_counter() - t0) * 1000, thresholds, lost)
