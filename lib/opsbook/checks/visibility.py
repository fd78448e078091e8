"""Partial visibility: what a check's role could not see, said as an info finding and never read as healthy."""
from __future__ import annotations

from ..core.findings import PARTIAL, Finding, Severity

PREFIX = f"{PARTIAL}: "  # the verdict says "incomplete" when a finding's `skipped` starts with it

STATS_GRANT = ("GRANT pg_monitor TO <this role>;  -- or at least pg_read_all_stats: the state, query and timings of "
               "other roles' sessions (on Supabase the postgres role has it)")
DATA_GRANT = ("GRANT pg_read_all_data TO <this role>;  -- PostgreSQL 14+ (pg_monitor does not include it); before "
              "14: GRANT SELECT ON ALL TABLES IN SCHEMA <schema> TO <this role>; and the same ON ALL SEQUENCES")


def partial(check_id: str, hidden: int, what: str, consequence: str, remediation: str = STATS_GRANT) -> list[Finding]:
    """[] when nothing was hidden; else one info finding: '<n> <what>', what it means, and the grant that fixes it."""
    if not hidden:
        return []
    reason = f"{PREFIX}{hidden:,} {what}"
    return [Finding(check_id, Severity.INFO, reason, detail=consequence, value=int(hidden),
                    remediation=remediation, skipped=reason)]


def is_partial(finding: Finding) -> bool:
    return bool(finding.skipped) and finding.skipped.startswith(PREFIX)
