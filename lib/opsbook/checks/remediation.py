"""remediation.backends: the pg_cancel_backend / pg_terminate_backend calls a run made (confirm=True only)."""
from __future__ import annotations

from ..core.findings import Finding, Severity
from .registry import Check, register


def judge_actions(df) -> list[Finding]:
    """One finding per requested call: info when done or not asked to run, warning when it could not be done."""
    if df is None or df.empty:
        return [Finding("remediation.backends", Severity.OK, "no backend was asked to be cancelled or terminated")]
    out = []
    for row in df.itertuples():
        failed = row.outcome.startswith(("refused", "failed", "the server refused"))
        out.append(Finding(
            "remediation.backends", Severity.WARNING if failed else Severity.INFO,
            f"{row.action} pid {row.pid}: {row.outcome}", detail=row.sql, objects=[f"pid {row.pid}"],
            value=bool(row.done), remediation="check the pid against the tables above and run it again" if failed
            else ""))
    return out


REMEDIATION = register(Check(
    id="remediation.backends",
    description="The pg_cancel_backend / pg_terminate_backend calls a runbook made on request (explicit pids and "
                "confirm=True), one finding per call with its outcome; without confirm, what it would have run.",
    judge=judge_actions,
    runbooks=("incident-triage",),
))
