"""Redaction of SQL taken from logs: opsbook.redact when present, else a local rule for password literals."""
from __future__ import annotations

import re

try:  # helper "robustness" adds opsbook.redact; until it lands, the local rule below stands in
    from ..redact import redact_query as _shared  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on what is installed
    _shared = None

_PASSWORD = re.compile(r"""((?:PASSWORD|password)\s*(?:=\s*)?)('(?:[^']|'')*'|"[^"]*")""")


def redact_text(text: str | None) -> str | None:
    """The text with password literals replaced by '***'."""
    if not text:
        return text
    if _shared is not None:
        return _shared(text)
    if "assword" not in text and "ASSWORD" not in text:
        return text
    return _PASSWORD.sub(r"\1'***'", text)
