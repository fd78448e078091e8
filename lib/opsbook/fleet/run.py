"""`opsbook fleet`: validate first, run each target (local threads driving processes, or Dask tasks), write what
came back into the reports folder, summarise."""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import UsageError

FAIL_ON = ("warning", "critical")
RANK = {"critical": 3, "warning": 2, "info": 1, "ok": 0}


@dataclass
class FleetResult:
    runbook: str
    rows: list[dict[str, Any]]
    started: dt.datetime
    duration_s: float
    summary_html: Path | None = None
    summary_json: Path | None = None
    fail_on: str | None = None
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if any(r["status"] != "ok" for r in self.rows):
            return 1
        if self.fail_on and any(RANK.get(r["worst"], 0) >= RANK[self.fail_on] for r in self.rows):
            return 3
        return 0

    def to_json(self) -> dict[str, Any]:
        targets = {}
        for r in self.rows:
            obj = dict(r["result"] or {"status": "failed", "runbook": self.runbook, "target": r["target"],
                                       "report_html": None, "notebook": None, "sidecar": None, "findings": [],
                                       "metrics": {}, "error": r["error"]})
            obj["worker"] = r["worker"]
            obj["duration_s"] = r["duration_s"]
            targets[r["target"]] = obj
        return {"runbook": self.runbook, "summary_html": str(self.summary_html) if self.summary_html else None,
                "summary_json": str(self.summary_json) if self.summary_json else None, "exit_code": self.exit_code,
                "totals": self.totals, "targets": targets}


def run_fleet(runbook: str, targets: list[str], params: dict[str, str], *, config, workers: int | None = None,
              scheduler: str | None = None, timeout_s: float = 600, fail_on: str | None = None,
              output_dir: Path | None = None, progress: Callable[[str], None] | None = None) -> FleetResult:
    """Run `runbook` on each target; one failing target never stops the others."""
    from .. import params as paramspec  # noqa: PLC0415
    from ..runner import runbook_path  # noqa: PLC0415

    if fail_on is not None and fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)}")
    if timeout_s <= 0:
        raise UsageError("--timeout-per-target must be a positive number of seconds")
    path = runbook_path(runbook)
    if "target" in params:
        raise UsageError("the targets are chosen with --targets, --all or --tag, not -p target=...")
    paramspec.coerce(paramspec.describe(path), dict(params))  # bad parameters: exit 2 before any target runs
    workers = workers or os.cpu_count() or 2
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    root = Path(output_dir or config.reports_dir).absolute()
    _writable(root)
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    t0 = time.perf_counter()
    say = progress or _progress_printer(len(targets))
    if scheduler:
        from .distributed import run_on_cluster  # noqa: PLC0415 - Dask only in distributed mode

        raw = run_on_cluster(scheduler, runbook, targets, params, config_text=config_text(config), timeout_s=timeout_s,
                             fail_on=fail_on, on_done=lambda r: say(_line(r)))
        rows = [_land(r, root) for r in raw]
    else:
        rows = _run_local(runbook, targets, params, config=config, workers=workers, timeout_s=timeout_s,
                          fail_on=fail_on, root=root, say=say)
    order = {t: i for i, t in enumerate(targets)}
    rows.sort(key=lambda r: order[r["target"]])
    result = FleetResult(runbook, rows, started, round(time.perf_counter() - t0, 2), fail_on=fail_on)
    from .summary import write_summary  # noqa: PLC0415

    write_summary(result, root, scheduler=scheduler, workers=workers)
    return result


def _run_local(runbook, targets, params, *, config, workers, timeout_s, fail_on, root, say) -> list[dict]:
    """`workers` processes, each keeping a warm kernel ahead of its next target (opsbook.kernels.run_jobs): one
    run per kernel, a run past the timeout killed with its worker, a failure one row that never stops the rest."""
    import socket  # noqa: PLC0415

    from ..kernels.many import Job, run_jobs  # noqa: PLC0415

    host = socket.gethostname()
    rows = []
    jobs = [Job(runbook, t, dict(params), fail_on=fail_on) for t in targets]
    for i, result, failure in run_jobs(jobs, workers=workers, config=config, output_dir=root, timeout_s=timeout_s):
        if result is not None:
            obj = result.to_json()
            mem = getattr(result, "worker", None) or {}
            raw = {"target": targets[i], "exit_code": result.exit_code, "result": obj, "files": {},
                   "worker": f"{host}:{mem.get('pid', '?')}", "error": obj.get("error"),
                   "duration_s": result.sidecar.get("duration_s", 0), "memory": mem}
        else:
            raw = {"target": targets[i], "exit_code": 1, "result": None, "files": {}, "worker": f"{host}",
                   "error": failure, "duration_s": timeout_s if failure and "timed out" in failure else 0}
        row = _land(raw, root)
        say(_line(row))
        rows.append(row)
    return rows


def config_text(config) -> str:
    """The configuration as TOML text for a child or a remote worker (no secrets: a configuration never holds
    passwords)."""
    from ..runner import _config_file  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        return Path(_config_file(config, Path(tmp))).read_text()


def _land(raw: dict[str, Any], root: Path) -> dict[str, Any]:
    """A task's outcome as a summary row; files that came back as bytes are written into the reports folder, and
    the sidecar records the worker."""
    result = raw.get("result")
    files = raw.get("files") or {}
    if files and result:
        result = _write_files(files, result, root)
    if result and result.get("sidecar"):
        _stamp_worker(Path(result["sidecar"]), raw["worker"])
    findings = (result or {}).get("findings") or []
    counts = {s: 0 for s in RANK}
    for f in findings:
        if f.get("severity") in counts:
            counts[f["severity"]] += 1
    worst = max((f.get("severity", "ok") for f in findings), key=lambda s: RANK.get(s, 0), default="ok")
    top = sorted((f for f in findings if RANK.get(f.get("severity"), 0) >= 2), key=lambda f: -RANK[f["severity"]])
    status = (result or {}).get("status") or "failed"
    return {"target": raw["target"], "status": status, "worst": worst, "counts": counts, "top": top[:2],
            "metrics": (result or {}).get("metrics") or {}, "error": raw.get("error") or (result or {}).get("error"),
            "worker": raw["worker"], "duration_s": raw["duration_s"], "result": result,
            "report_html": (result or {}).get("report_html")}


def _write_files(files: dict[str, bytes], result: dict[str, Any], root: Path) -> dict[str, Any]:
    """Write a remote run's files under root/<day>/ with the worker's stem (another suffix if taken here)."""
    from ..report_html import ensure_shared_plotly  # noqa: PLC0415

    day = Path(result["sidecar"]).parent.name
    stem = Path(result["sidecar"]).stem
    folder = root / day
    folder.mkdir(parents=True, exist_ok=True)
    base, n = stem, 1
    while (folder / f"{stem}.json").exists():
        n += 1
        stem = f"{base}-{n}"
    for name, data in files.items():
        suffix = name[len(base):]
        target = folder / f"{stem}{suffix}"
        target.write_bytes(data)
        if suffix != ".html":
            os.chmod(target, 0o600 if suffix.endswith((".csv", ".sql")) else 0o644)
    if any(name.endswith(".html") for name in files):
        ensure_shared_plotly(root)  # the report loads ../plotly-<version>.min.js from the reports folder
    out = dict(result)
    for key, suffix in (("report_html", ".html"), ("notebook", ".ipynb"), ("sidecar", ".json")):
        out[key] = str(folder / f"{stem}{suffix}")
    return out


def _stamp_worker(sidecar: Path, worker: str) -> None:
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    data["worker"] = worker
    tmp = sidecar.with_name(f".{sidecar.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, sidecar)


def _writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".opsbook-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"cannot write reports into {root}: {e.strerror}") from None


def _line(row: dict[str, Any]) -> str:
    tally = ", ".join(f"{n} {s}" for s, n in row["counts"].items() if n and s in ("critical", "warning"))
    what = "ran" if row["status"] == "ok" else f"FAILED: {row['error']}"
    return (f"{row['target']}: {what} in {row['duration_s']:.1f} s" + (f" ({tally})" if tally else "")
            + f" [{row['worker']}]")


def _progress_printer(total: int) -> Callable[[str], None]:
    """A tqdm bar on a terminal; one line per finished target otherwise (logs, cron, CI)."""
    if sys.stderr.isatty():
        from tqdm import tqdm  # noqa: PLC0415

        bar = tqdm(total=total, unit="target", file=sys.stderr)

        def tick(line: str) -> None:
            bar.write(line, file=sys.stderr)
            bar.update(1)
        return tick
    return lambda line: print(line, file=sys.stderr, flush=True)
