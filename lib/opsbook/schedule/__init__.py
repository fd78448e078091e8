"""Scheduled runs: `[[schedules]]` in opsbook.toml, the slots they are due at, the runner a timer calls, and the
notifications it sends."""
from __future__ import annotations

from .spec import Schedule, load_schedules

__all__ = ["Schedule", "load_schedules"]
