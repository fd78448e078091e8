"""Fleets: one runbook over many targets in parallel, on local processes or a Dask cluster, with a summary."""
from __future__ import annotations

from .run import FleetResult, run_fleet

__all__ = ["FleetResult", "run_fleet"]
