"""The post-mortem of an incident window: evidence from samples, snapshots, logs and sidecars; causes; the document."""
from __future__ import annotations

from .report import PostMortem
from .window import Window, make_window, parse_when

__all__ = ["PostMortem", "Window", "make_window", "parse_when"]
