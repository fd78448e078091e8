"""`opsbook reports prune`: a reports folder that does not grow forever, with its index kept consistent."""
from __future__ import annotations

import datetime as dt
import html
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
STEM = re.compile(r"^(?P<runbook>[^.]+?)--(?P<target>.+?)--\d{6}Z(-\d+)?$")
LAB = "lab"  # <reports>/lab/<day>/: JupyterLab's working copies (run/workcopy.py), aged like the reports
MONTHLY = ("monthly-health",)  # kept by default: a year of monthly reports is what the team compares against
HREF = re.compile(rb"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)


@dataclass
class PruneResult:
    removed_runs: int = 0
    removed_files: int = 0
    removed_bytes: int = 0
    kept_monthly: int = 0
    kept_linked: int = 0  # old runs kept because a kept report links to them
    folders: list[str] = field(default_factory=list)

    def line(self) -> str:
        from ..core.display import human_bytes  # noqa: PLC0415

        return (f"removed {self.removed_runs} runs ({self.removed_files} files, {human_bytes(self.removed_bytes)})"
                + (f"; kept {self.kept_monthly} monthly reports" if self.kept_monthly else "")
                + (f"; kept {self.kept_linked} older reports that kept reports link to" if self.kept_linked else ""))


def prune_reports(root: Path, older_than_s: float, *, keep_monthly: bool = True, now: dt.datetime | None = None,
                  dry_run: bool = False) -> PruneResult:
    """Remove the files of every run whose day folder is older than the cutoff (the report, notebook, sidecar
    and every artifact sharing its stem); monthly reports stay unless keep_monthly is False, and so does every
    report a kept report links to (a monthly report's capacity, cost and incident reports live as long as it does):
    no kept page is left with a dead link. The index is rewritten afterwards so it never links to a removed report."""
    now = now or dt.datetime.now(dt.timezone.utc)
    cutoff = (now - dt.timedelta(seconds=older_than_s)).date()
    root = Path(root).absolute()  # links are compared as normalised absolute paths
    out = PruneResult()
    if not root.is_dir():
        return out
    runs = _runs(root)
    doomed: dict[Path, list[Path]] = {}
    for stem, (runbook, day, files) in runs.items():
        if day >= cutoff:
            continue
        if keep_monthly and runbook in MONTHLY:
            out.kept_monthly += 1
            continue
        doomed[stem] = files
    for stem in _linked(root, runs, doomed):
        del doomed[stem]
        out.kept_linked += 1
    for files in doomed.values():
        out.removed_runs += 1
        for f in files:
            size = sum(p.stat().st_size for p in f.rglob("*") if p.is_file()) if f.is_dir() else f.stat().st_size
            out.removed_files += 1
            out.removed_bytes += size
            if not dry_run:
                shutil.rmtree(f) if f.is_dir() else f.unlink()
    if not dry_run:
        for day in _day_folders(root):
            if dt.date.fromisoformat(day.name) < cutoff and not any(day.iterdir()):
                day.rmdir()
                out.folders.append(day.relative_to(root).as_posix())
        from ..report.index import write_index  # noqa: PLC0415

        write_index(root)
    return out


Runs = dict[Path, tuple[str, dt.date, list[Path]]]  # stem (day folder / name) -> (runbook, day, its files)


def _runs(root: Path) -> Runs:
    """Every run of ours under root, with the files sharing its stem (report, notebook, sidecar, artifacts), and
    every Lab working copy."""
    out: Runs = {}
    for day in _day_folders(root):
        date = dt.date.fromisoformat(day.name)
        for f in day.iterdir():
            stem = f.name.split(".", 1)[0]
            m = STEM.match(stem)
            if m is None:
                continue  # not a report of ours: leave it
            out.setdefault(day / stem, (m.group("runbook"), date, []))[2].append(f)
    return out


def _day_folders(root: Path) -> list[Path]:
    """The dated folders of reports, and of JupyterLab's working copies under lab/."""
    found = []
    for parent in (root, root / LAB):
        if parent.is_dir() and not parent.is_symlink():
            found += sorted(p for p in parent.iterdir() if p.is_dir() and not p.is_symlink() and DAY.match(p.name))
    return found


def _linked(root: Path, runs: Runs, doomed: dict[Path, list[Path]]) -> set[Path]:
    """The doomed runs that a kept page links to, followed link by link (a spared report's own links too)."""
    spared: set[Path] = set()
    pages = [f for stem, (_, _, files) in runs.items() if stem not in doomed for f in files if f.suffix == ".html"]
    while pages:
        found = set()
        for page in pages:
            for target in _local_links(page):
                stem = target.parent / target.name.split(".", 1)[0]
                if stem in doomed and stem not in spared:
                    found.add(stem)
        spared |= found
        pages = [f for stem in found for f in doomed[stem] if f.suffix == ".html"]
    return spared


def _local_links(page: Path) -> set[Path]:
    """The files a report's links point to inside its folder tree (no scheme, no host; the fragment dropped)."""
    try:
        data = page.read_bytes()
    except OSError:
        return set()
    out = set()
    for m in HREF.finditer(data):
        raw = html.unescape((m.group(1) or m.group(2) or b"").decode("utf-8", "replace")).strip()
        url = urlsplit(raw)
        if url.scheme or url.netloc or not url.path:
            continue
        out.add(Path(os.path.normpath(page.parent / unquote(url.path))))
    return out
