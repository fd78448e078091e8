"""A scheduled run that ended without a report of its own (killed at its timeout, crashed before writing one):
the report its killed process still wrote, or a record of the run in the reports folder, so that the index and the
schedule log list it like any other run."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from ..core.display import esc

KIND = "no_report"  # the sidecar's `kind`: only this sidecar and a one-paragraph HTML page exist, no notebook
UTC = dt.timezone.utc


def find_or_record(config, root: Path, *, runbook: str, target: str, params: dict[str, Any], started: float,
                   ended: float, error: str, about: str) -> str:
    """The sidecar path of the attempt that ran from `started` to `ended` (epoch seconds): the report the run
    wrote when it was stopped (SIGTERM lets the runner finish a failed report), else a record written now."""
    return _killed_report(root, runbook, target, params, started, ended) or \
        str(write_record(config, root, runbook=runbook, target=target, params=params, started=started,
                         ended=ended, error=error, about=about))


def _killed_report(root: Path, runbook: str, target: str, params: dict[str, Any], started: float,
                   ended: float) -> str | None:
    """The newest failed sidecar of `runbook` on `target` with these parameters, started within the attempt."""
    since, until = int(started), ended + 1
    days = {dt.datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d") for t in (since, until)}
    found: list[tuple[float, str]] = []
    for day in sorted(days):
        for path in (Path(root) / day).glob(f"{runbook}--{target}--*.json"):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                at = dt.datetime.strptime(data["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
                given = data.get("parameters") or {}
                same = all(given.get(k) == v for k, v in params.items())
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
            if (since <= at <= until and same and data.get("status") == "failed" and not data.get("kind")
                    and (data.get("runbook"), data.get("target")) == (runbook, target)):
                found.append((at, str(path)))
    return max(found)[1] if found else None


def write_record(config, root: Path, *, runbook: str, target: str, params: dict[str, Any], started: float,
                 ended: float, error: str, about: str) -> Path:
    """reports/DAY/<runbook>--<target>--HHMMSSZ.json (the sidecar contract, status failed, `kind` no_report) and
    .html beside it; the index is refreshed. Returns the sidecar's path."""
    from ..core.redact import known_secrets, scrub_files  # noqa: PLC0415
    from ..report.index import write_index  # noqa: PLC0415
    from ..run.runner import reserve_stem  # noqa: PLC0415

    root = Path(root)
    at = dt.datetime.fromtimestamp(int(started), UTC)
    stem = reserve_stem(root, runbook, target, at)
    sidecar = {"runbook": runbook, "target": target, "status": "failed", "started_at": f"{at:%Y-%m-%dT%H:%M:%SZ}",
               "started_by": "schedule", "duration_s": round(ended - started, 2), "server_version_num": None, "parameters": params,
               "findings": [], "metrics": {}, "error": error, "kind": KIND}
    json_path, html_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".html")
    json_path.write_text(json.dumps(sidecar, indent=2, default=str) + "\n", encoding="utf-8")
    html_path.write_text(_page(sidecar, about), encoding="utf-8")
    scrub_files(known_secrets(config), json_path, html_path)
    # reserve_stem's empty notebook only held the name while the files were written; no notebook exists for a
    # run that never wrote one (a later run cannot take the name: it would have to start in this past second)
    stem.with_name(stem.name + ".ipynb").unlink(missing_ok=True)
    write_index(root)
    return json_path


def _page(sidecar: dict[str, Any], about: str) -> str:
    title = f"{sidecar['runbook']} on {sidecar['target']}: no report"
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{esc(title)}</title><style>body{{font-family:system-ui,sans-serif;margin:2em auto;"
            "max-width:50em;padding:0 1em;color:#1d2939}.failed{color:#b42318;font-weight:600}</style></head><body>"
            f"<h1>{esc(title)}</h1><p class=\"failed\">failed: {esc(sidecar['error'])}</p>"
            f"<p>{esc(about)}, started {esc(sidecar['started_at'])}, ended after {sidecar['duration_s']:,.1f} s "
            "without a report of its own: no notebook and no findings were written. This page and its sidecar "
            "record the run so that the reports index and the schedule log list it.</p></body></html>\n")
