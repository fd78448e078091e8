"""Which existing checks the monthly report reuses, by section (new ids only for what is new: health.trend)."""
from __future__ import annotations

CAPACITY = ("storage.database_size", "storage.growth_forecast", "connections.headroom", "auth.mau")
PERFORMANCE = ("cache.hit_ratio",)
MAINTENANCE = ("tables.bloat", "vacuum.dead_tuples", "indexes.unused", "indexes.invalid", "sequences.exhaustion")
