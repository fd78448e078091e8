"""Redaction of SQL taken from logs: opsbook.core.redact.redact_sql, the one rule for every query text."""
from __future__ import annotations

from ..core.redact import redact_sql as redact_text

__all__ = ["redact_text"]
