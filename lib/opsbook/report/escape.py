"""Text from a notebook's outputs made safe for a page: escaped, and without terminal colour codes."""
from __future__ import annotations

import html
import re
from typing import Any

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    """Tracebacks come coloured with terminal escape sequences; a report shows them plain."""
    return ANSI.sub("", text)


def text_esc(value: Any) -> str:
    """Escape for element content (quotes stay readable in the page source; attributes use `esc`)."""
    return html.escape("" if value is None else str(value), quote=False)
