"""Incident priority P0-P3 from findings (guide 002's severity levels)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .findings import Finding, Severity




@dataclass(frozen=True)
class Priority:
    """One of guide 002's severity levels: its name, what it means and how fast someone must respond."""

    level: int
    name: str
    response: str
    meaning: str

    @property
    def label(self) -> str:
        return f"P{self.level}"


# Guide 002 (AIN MVP runbook, "Escalation Procedures / Severity Levels"), word for word where it can be.
PRIORITIES = {
    0: Priority(0, "Critical", "immediate", "system completely down, or about to be"),
    1: Priority(1, "High", "within 2 hours", "performance severely degraded"),
    2: Priority(2, "Medium", "within 24 hours", "performance slow but functional"),
    3: Priority(3, "Low", "within 1 week", "optimisation opportunities, nothing urgent"),
}

# Guide 002 "Contact Escalation", in order.
ESCALATION = ("on-call engineer (immediate response)", "lead developer (if no response in 30 min)",
              "product owner (for business decisions)", "external support, e.g. Supabase (vendor-specific issues)")

# Findings that take the whole application down, or will within minutes: P0 at this severity or worse.
#   connectivity.unreachable: the app cannot reach its database at all (guide 001 "Service Outage").
#   connections.saturation critical: new connections are refused ("too many clients"), the app is down for new
#     requests.
#   wraparound.xid_age critical: PostgreSQL will stop assigning transaction IDs: no more writes.
P0_WHEN = {"connectivity.unreachable": Severity.CRITICAL, "connections.saturation": Severity.CRITICAL,
           "wraparound.xid_age": Severity.CRITICAL}


def finding_priority(f: Finding) -> int:
    """P-level one finding alone would justify: P0 for outages, P1 critical, P2 warning, P3 otherwise."""
    floor = P0_WHEN.get(f.check)
    if floor is not None and f.severity.rank >= floor.rank:
        return 0
    return {Severity.CRITICAL: 1, Severity.WARNING: 2}.get(f.severity, 3)


def incident_priority(findings: Iterable[Finding]) -> Priority:
    """The incident's priority: the most urgent finding decides (no findings: P3)."""
    return PRIORITIES[min((finding_priority(f) for f in findings), default=3)]


# Within one priority, what to look at first: causes before symptoms (a root blocker before the sessions it
# holds up, an idle transaction before the slow queries behind it).
CHECK_ORDER = ("connectivity.unreachable", "connections.saturation", "locks.blocking", "activity.idle_in_transaction",
               "activity.long_running", "wraparound.xid_age", "replication.slots", "replication.lag",
               "connections.idle", "locks.deadlocks", "queries.slow", "storage.temp_files", "cache.hit_ratio",
               "app.freshness")


def ranked(findings: Iterable[Finding]) -> list[Finding]:
    """Most urgent first: by P-level, severity, CHECK_ORDER, then the larger value within one check."""
    def key(f: Finding):
        order = CHECK_ORDER.index(f.check) if f.check in CHECK_ORDER else len(CHECK_ORDER)
        size = f.value if isinstance(f.value, (int, float)) and not isinstance(f.value, bool) else 0
        return (finding_priority(f), -f.severity.rank, order, -size)

    return sorted(findings, key=key)
