"""One query per .sql file; the resolver picks the file for the server's version.

`activity/long_running.sql` holds from the oldest supported version on; `statements.post_130000.sql` replaces
it from server_version_num 130000 on. The highest suffix at or below the server's version wins.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

ROOT = Path(__file__).parent
_SUFFIX = re.compile(r"^(?P<name>.+?)(?:\.post_(?P<version>\d{6}))?\.sql$")
OLDEST_SUPPORTED = 130000  # PostgreSQL 13; older servers are past their end of life


@functools.cache
def catalogue() -> dict[str, dict[int, Path]]:
    """name -> {minimum server_version_num: file}."""
    out: dict[str, dict[int, Path]] = {}
    for path in sorted(ROOT.rglob("*.sql")):
        m = _SUFFIX.match(path.name)
        if not m:
            continue
        name = str(path.parent.relative_to(ROOT) / m.group("name"))
        out.setdefault(name, {})[int(m.group("version") or 0)] = path
    return out


def resolve(name: str, server_version_num: int) -> Path:
    """The file for `name` on a server of that version; KeyError when there is none."""
    versions = catalogue().get(name)
    if not versions:
        raise KeyError(f"no SQL file named {name!r} under {ROOT}")
    usable = [v for v in versions if v <= server_version_num]
    if not usable:
        raise KeyError(f"{name!r} has no variant for server_version_num {server_version_num}")
    return versions[max(usable)]


@functools.cache
def _read(path: Path) -> str:
    return path.read_text()


def load(name: str, server_version_num: int) -> str:
    return _read(resolve(name, server_version_num))
