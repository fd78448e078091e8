"""Activity samples for post-mortems: `opsbook watch` takes one every few seconds into the history store."""
from __future__ import annotations

from .loop import Watcher
from .sample import blocking_roots, take_sample
from .store import COUNTERS, prune_samples, read_samples, samples, write_sample

__all__ = ["COUNTERS", "Watcher", "blocking_roots", "prune_samples", "read_samples", "samples", "take_sample",
           "write_sample"]
