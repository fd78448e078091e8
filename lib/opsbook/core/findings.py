"""Severity, Finding, and how a list of findings is summarised."""
from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable


class Severity(str, enum.Enum):
    """Worst first; compare with `rank` (higher is worse)."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"
    OK = "ok"

    @property
    def rank(self) -> int:
        return {"critical": 3, "warning": 2, "info": 1, "ok": 0}[self.value]

    @classmethod
    def parse(cls, value: "str | Severity") -> "Severity":
        try:
            return cls(value.value if isinstance(value, Severity) else str(value).lower())
        except ValueError:
            raise ValueError(f"unknown severity {value!r}; use one of critical, warning, info, ok") from None

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


@dataclass
class Finding:
    """One judgement about one thing: what was seen, how bad, and what to do."""

    check: str
    severity: Severity
    title: str
    detail: str = ""
    objects: list[str] = field(default_factory=list)
    value: Any = None
    threshold: Any = None
    remediation: str = ""
    skipped: str | None = None

    def __post_init__(self) -> None:
        self.severity = Severity.parse(self.severity)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.value
        d["value"] = _jsonable(self.value)
        d["threshold"] = _jsonable(self.threshold)
        if self.skipped is None:
            d.pop("skipped")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Finding":
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__ if k in d})


# How a finding's `skipped` text starts when the result is incomplete (the verdict says so, never "all ok"):
PARTIAL = "partial visibility"  # the role could not see everything (emitted by the checks; names the grant)
NOT_JUDGED = "could not be judged"  # the check itself failed (an unexpected error, isolated)
CONNECTION_LOST = "connection lost"  # the session died during the run
TIMED_OUT = "query cancelled by statement_timeout"  # opsbook's own timeout stopped the check
GRANTS = "pg_monitor (or pg_read_all_stats)"


def gaps(findings: Iterable[Finding]) -> list[str]:
    """What keeps these findings from being the whole truth, one sentence each (empty: nothing is missing)."""
    kinds: dict[str, list[str]] = {PARTIAL: [], NOT_JUDGED: [], CONNECTION_LOST: [], TIMED_OUT: []}
    for f in findings:
        for prefix, checks in kinds.items():
            if (f.skipped or "").startswith(prefix) and f.check not in checks:
                checks.append(f.check)
    out = []

    def names(checks: list[str]) -> str:
        return ", ".join(checks[:6]) + (f" and {len(checks) - 6} more" if len(checks) > 6 else "")

    if kinds[CONNECTION_LOST]:
        n = len(kinds[CONNECTION_LOST])
        out.append(f"the database went away during the run: {n} check{'s' * (n != 1)} cut off "
                   f"({names(kinds[CONNECTION_LOST])}); what is below is what was seen before")
    if kinds[NOT_JUDGED]:
        n = len(kinds[NOT_JUDGED])
        out.append(f"{n} check{'s' * (n != 1)} could not be judged ({names(kinds[NOT_JUDGED])}): "
                   "an error in opsbook, the rest of the report is valid")
    if kinds[PARTIAL]:
        n = len(kinds[PARTIAL])
        out.append(f"incomplete: {n} check{'s' * (n != 1)} saw only part of the database "
                   f"({names(kinds[PARTIAL])}); grant the monitoring role {GRANTS} for the whole picture")
    if kinds[TIMED_OUT]:
        n = len(kinds[TIMED_OUT])
        out.append(f"incomplete: opsbook's statement_timeout cancelled {n} check{'s' * (n != 1)} "
                   f"({names(kinds[TIMED_OUT])}); raise statement_timeout_ms for this run")
    return out


def skipped(check: str, reason: str, how_to_enable: str = "") -> Finding:
    """The info finding of a check that could not run here."""
    return Finding(check=check, severity=Severity.INFO, title=f"skipped: {reason}",
                   detail=how_to_enable, remediation=how_to_enable, skipped=reason)


def ok(check: str, title: str, **kw: Any) -> Finding:
    return Finding(check=check, severity=Severity.OK, title=title, **kw)


def grade(value: float | None, warning: float, critical: float, *, higher_is_worse: bool = True) -> Severity:
    """critical / warning / ok for one number; None (not measured) is ok."""
    if value is None or value != value:
        return Severity.OK
    if not higher_is_worse:
        value, warning, critical = -value, -warning, -critical
    if value >= critical:
        return Severity.CRITICAL
    if value >= warning:
        return Severity.WARNING
    return Severity.OK


def by_severity(findings: Iterable[Finding]) -> list[Finding]:
    """Worst first, stable within a severity."""
    return sorted(findings, key=lambda f: -f.severity.rank)


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    out = {s.value: 0 for s in Severity}
    for f in findings:
        out[f.severity.value] += 1
    return out


def worst(findings: Iterable[Finding]) -> Severity:
    return max((f.severity for f in findings), key=lambda s: s.rank, default=Severity.OK)


def _jsonable(v: Any) -> Any:
    """Numbers from numpy/pandas become plain Python; NaN becomes None."""
    if v is None or isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    if hasattr(v, "item"):
        return _jsonable(v.item())
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)
