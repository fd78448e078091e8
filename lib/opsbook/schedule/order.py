"""The order within a slot: schedules whose runbooks feed another's report run before the schedules that read them."""
from __future__ import annotations

# runbook -> the runbooks whose reports it reads (links, headline numbers). monthly-health: the latest capacity,
# cost, backup and security reports (health/report.py show_run, headlines.py from_sidecars) and the month's
# incident-triage and post-mortem runs (show_incidents), and the month's query tuning (tuning_line).
# tests/test_schedule_order.py checks this against the code.
READS: dict[str, tuple[str, ...]] = {
    "monthly-health": ("capacity-planning", "cost-analysis", "backup-verification", "security-audit",
                       "incident-triage", "post-mortem", "query-tuning"),
}


def stage(runbook: str, _seen: frozenset[str] = frozenset()) -> int:
    """0 for a runbook that reads no other report; else one more than the highest stage of what it reads."""
    if runbook in _seen:  # a circle in READS would be a mistake in the table; never loop over it
        return 0
    return max((stage(r, _seen | {runbook}) + 1 for r in READS.get(runbook, ())), default=0)


def ordered(schedules: list) -> list:
    """The schedules in feeding order (stable: the configuration's order within one stage)."""
    return sorted(schedules, key=lambda s: stage(s.runbook))


def feeders(reader, schedules: list) -> list[str]:
    """Names of the schedules whose runbook `reader`'s runbook reads."""
    reads = READS.get(reader.runbook, ())
    return [s.name for s in schedules if s.runbook in reads and s.name != reader.name]
