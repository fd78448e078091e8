"""The check catalogue as plain data: what `opsbook checks` prints and docs/checks.md lists."""
from __future__ import annotations

from typing import Any


def check_catalogue() -> list[dict[str, Any]]:
    """Every registered check, sorted by id: id, concern, description, thresholds (unit, default, source)."""
    from . import load_all  # noqa: PLC0415

    return [{"id": c.id, "concern": c.concern, "description": c.description,
             "thresholds": [{"name": t.name, "default": t.default, "unit": t.unit, "source": t.source,
                             **({"help": t.help} if t.help else {})} for t in c.thresholds],
             "runbooks": list(c.runbooks)}
            for c in load_all().values()]


def format_catalogue(entries: list[dict[str, Any]]) -> str:
    """Human-readable: one block per check, thresholds indented beneath."""
    lines = []
    for e in entries:
        lines.append(f"{e['id']}  ({e['concern']})")
        lines.append(f"    {e['description']}")
        for t in e["thresholds"]:
            lines.append(f"    - {t['name']} = {t['default']} {t['unit']}  [{t['source']}]")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
