"""storage.temp_files: temporary files written by queries whose sorts and hashes outgrew work_mem."""
from __future__ import annotations

from ..core.display import human_bytes
from ..core.findings import Finding, Severity, grade
from .locks import window_text, with_window
from .registry import Check, CheckContext, Threshold, register
from .standby import QUERY as STANDBY, mark, of, relay

GiB = 1024 ** 3


def temp_file_stats(ctx: CheckContext):
    return mark(with_window(ctx, ctx.db.fetch("temp_files/by_database"), "temp_bytes", "temp_bytes"), ctx)


def judge_temp_files(df, *, warning: float = GiB, critical: float = 100 * GiB) -> list[Finding]:
    out = []
    standby = of(df)
    own = (" On a standby these are its own spills (queries run here); work_mem for a role or database is set on "
           "the primary and replicates here." if standby is not None else "")
    for row in df.itertuples():
        written, since = window_text(row, "temp_bytes")
        sev = grade(written, warning, critical)
        files = f" in {row.temp_files:,} temporary files" if since.startswith("since") else " of temporary files"
        title = f"{human_bytes(written)}{files} in database {row.datname} {since}"
        out.append(Finding(
            "storage.temp_files", sev, title,
            detail=f"work_mem is {human_bytes(row.work_mem_bytes)}; every sort or hash larger than that spills to "
                   f"disk (log_temp_files = {row.log_temp_files}).{own}",
            objects=[row.datname], value=int(written),
            threshold=critical if sev is Severity.CRITICAL else warning,
            remediation="" if sev is Severity.OK else
            "Give the statements with temp_blks_written (queries.slow) an index that avoids the sort, or more "
            "work_mem. For one role: ALTER ROLE app SET work_mem = '32MB'; log_temp_files = 0 logs each spill."))
    return relay(out, standby) or [Finding("storage.temp_files", Severity.OK, "no temporary file counters readable")]


TEMP_FILES = register(Check(
    id="storage.temp_files",
    description="Temporary file bytes and counts of this database (queries spilling past work_mem), over the "
                "run's window when the history store has a snapshot in it, else since statistics reset.",
    data=temp_file_stats,
    judge=judge_temp_files,
    thresholds=(
        Threshold("warning", GiB, "bytes in the window (or since statistics reset)", "opsbook default: gigabytes of spills mean "
                  "work_mem is too small for a regular query"),
        Threshold("critical", 100 * GiB, "bytes in the window (or since statistics reset)", "opsbook default: spills on the scale of "
                  "the disk of a small instance"),
    ),
    queries=("temp_files/by_database", STANDBY),
    runbooks=("incident-triage",),
))
