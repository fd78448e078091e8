"""Statements counted once per execution: the extended query protocol logs a duration for each of its parse, bind
and execute phases (log_min_duration_statement = 0 writes three lines for one query); only the execute, or a
simple query's "statement:", is an execution, as pgbadger counts them."""
from __future__ import annotations

import re

PHASE = re.compile(r"duration: [0-9.]+ ms\s+(?:parse|bind) ")


def is_phase(e) -> bool:
    """A parse or bind phase's duration line: not a statement of its own."""
    return e.kind == "slow_statement" and PHASE.match(e.message) is not None


def executions(events) -> int:
    """The statements executed among these events' durations (each execute and each simple query once)."""
    return sum(1 for e in events if e.kind == "slow_statement" and not is_phase(e))
