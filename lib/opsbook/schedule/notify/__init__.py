"""Notifications: `[notify.NAME]` webhooks and e-mail that tell people a report is ready, serious, or failed."""
from __future__ import annotations

from .send import send_all, send_one

__all__ = ["send_all", "send_one"]
