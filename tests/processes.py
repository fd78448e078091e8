"""Processes on this machine that a test may count as its own: only descendants of the test's process."""
from __future__ import annotations

import os
from pathlib import Path


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descends_from(pid: int, ancestor: int | None = None) -> bool:
    """Whether `pid` is `ancestor` (default: this process) or one of its descendants: another test's, another
    worker's or another run's processes on the machine are not ours."""
    ancestor = os.getpid() if ancestor is None else ancestor
    while pid and pid > 1:
        if pid == ancestor:
            return True
        pid = parent_of(pid)
    return False


def own_processes(marker: bytes) -> list[int]:
    """Descendants of this process whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmd and descends_from(int(entry.name)):
            found.append(int(entry.name))
    return found
