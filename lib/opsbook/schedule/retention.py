"""`opsbook reports prune`: a reports folder that does not grow forever, with its index kept consistent."""
from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
STEM = re.compile(r"^(?P<runbook>[^.]+?)--(?P<target>.+?)--\d{6}Z(-\d+)?$")
MONTHLY = ("monthly-health",)  # kept by default: a year of monthly reports is what the team compares against


@dataclass
class PruneResult:
    removed_runs: int = 0
    removed_files: int = 0
    removed_bytes: int = 0
    kept_monthly: int = 0
    folders: list[str] = field(default_factory=list)

    def line(self) -> str:
        from ..core.display import human_bytes  # noqa: PLC0415

        return (f"removed {self.removed_runs} runs ({self.removed_files} files, {human_bytes(self.removed_bytes)})"
                + (f"; kept {self.kept_monthly} monthly reports" if self.kept_monthly else ""))


def prune_reports(root: Path, older_than_s: float, *, keep_monthly: bool = True, now: dt.datetime | None = None,
                  dry_run: bool = False) -> PruneResult:
    """Remove the files of every run whose day folder is older than the cutoff (the report, notebook, sidecar
    and every artifact sharing its stem); monthly reports stay unless keep_monthly is False. The index is
    rewritten afterwards so it never links to a removed report."""
    now = now or dt.datetime.now(dt.timezone.utc)
    cutoff = (now - dt.timedelta(seconds=older_than_s)).date()
    root = Path(root)
    out = PruneResult()
    if not root.is_dir():
        return out
    for day in sorted(p for p in root.iterdir() if p.is_dir() and DAY.match(p.name)):
        if dt.date.fromisoformat(day.name) >= cutoff:
            continue
        stems: dict[str, list[Path]] = {}
        for f in day.iterdir():
            stem = f.name.split(".", 1)[0]
            stems.setdefault(stem, []).append(f)
        for stem, files in stems.items():
            m = STEM.match(stem)
            if m is None:
                continue  # not a report of ours: leave it
            if keep_monthly and m.group("runbook") in MONTHLY:
                out.kept_monthly += 1
                continue
            out.removed_runs += 1
            for f in files:
                size = sum(p.stat().st_size for p in f.rglob("*") if p.is_file()) if f.is_dir() else f.stat().st_size
                out.removed_files += 1
                out.removed_bytes += size
                if not dry_run:
                    shutil.rmtree(f) if f.is_dir() else f.unlink()
        if not dry_run and not any(day.iterdir()):
            day.rmdir()
            out.folders.append(day.name)
    if not dry_run:
        from ..report.index import write_index  # noqa: PLC0415

        write_index(root)
    return out
