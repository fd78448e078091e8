"""Throwaway PostgreSQL clusters: one per restore, Unix socket only, dropped when the run ends or its owner dies."""
from .cluster import ScratchCluster, throwaway_cluster
from .liveness import sweep

__all__ = ["ScratchCluster", "sweep", "throwaway_cluster"]
