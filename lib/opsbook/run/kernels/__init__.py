"""Warm kernels for runbook runs: started ahead with the heavy imports done, one run each, many in parallel."""
from __future__ import annotations

from .warm import KernelPool, WarmKernel

__all__ = ["KernelPool", "WarmKernel"]
