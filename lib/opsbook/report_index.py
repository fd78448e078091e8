"""reports/index.html: every run found from its sidecar, newest first, grouped by month; offline and escaped."""
from __future__ import annotations

import json
import os
import re
from itertools import groupby
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .display import COLORS, badge, esc

DAY_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SIDECAR = re.compile(r"^.+--.+--\d{6}Z(-\d+)?\.json$")
SEVERITIES = ("critical", "warning", "info", "ok")
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:72em;padding:0 1em;
  color:#1d2939}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #e4e4e7}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.num,td.nowrap{white-space:nowrap}
.ob-badge{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:.85em;font-weight:600}
.muted{color:#667085}
"""


def index_path(root: Path) -> Path:
    return Path(root) / "index.html"


def collect(root: Path) -> list[dict[str, Any]]:
    """Every readable sidecar under root/YYYY-MM-DD/, newest first; each with `_stem` (relative, no suffix)."""
    runs = []
    root = Path(root)
    if not root.is_dir():
        return runs
    for day in root.iterdir():
        if not (day.is_dir() and DAY_FOLDER.match(day.name)):
            continue
        for path in day.glob("*.json"):
            if not SIDECAR.match(path.name):
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # half-written or foreign file: skip it rather than lose the whole index
            if isinstance(data, dict) and {"runbook", "target", "status"} <= data.keys():
                data["_stem"] = f"{day.name}/{path.stem}"
                runs.append(data)
    runs.sort(key=lambda r: (str(r.get("started_at") or ""), r["_stem"]), reverse=True)
    return runs


def write_index(root: Path) -> Path:
    """Write (atomically) and return reports/index.html."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = index_path(root)
    tmp = path.with_name(f".index.{os.getpid()}.tmp")
    tmp.write_text(render(collect(root)), encoding="utf-8")
    os.replace(tmp, path)
    return path


def render(runs: list[dict[str, Any]]) -> str:
    sections = []
    for month, group in groupby(runs, key=lambda r: str(r.get("started_at") or "")[:7] or "undated"):
        rows = "".join(_row(r) for r in group)
        sections.append(f"<h2>{esc(month)}</h2><table><thead><tr><th>started (UTC)</th><th>runbook</th>"
                        "<th>target</th><th>status</th>"
                        + "".join(f'<th>{s}</th>' for s in SEVERITIES)
                        + f"<th>duration</th><th>files</th></tr></thead><tbody>{rows}</tbody></table>")
    body = "".join(sections) or '<p class="muted">No runs yet: try <code>opsbook run incident-triage</code>.</p>'
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>opsbook reports</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1.0"><style>{CSS}</style></head>'
            f'<body><h1>opsbook reports</h1><p class="muted">{len(runs)} runs, newest first.</p>{body}</body></html>')


def _row(r: dict[str, Any]) -> str:
    counts = dict.fromkeys(SEVERITIES, 0)
    for f in r.get("findings") or []:
        if isinstance(f, dict) and f.get("severity") in counts:
            counts[f["severity"]] += 1
    href = quote(r["_stem"])
    status = str(r.get("status"))
    color = COLORS["ok"] if status == "ok" else COLORS["critical"]
    status_cell = f'<span class="ob-badge" style="background:{color}">{esc(status)}</span>'
    if r.get("error"):
        status_cell += f'<br><span class="muted">{esc(str(r["error"])[:160])}</span>'
    tally = "".join(f'<td class="num">{badge(s) if n else ""} {n or ""}</td>' for s, n in counts.items())
    duration = r.get("duration_s")
    dur = f"{duration:,.1f} s" if isinstance(duration, (int, float)) else ""
    started = str(r.get("started_at") or "").replace("T", " ").rstrip("Z")
    return (f'<tr><td class="nowrap">{esc(started)}</td><td><a href="{esc(href)}.html">{esc(r["runbook"])}</a></td>'
            f'<td>{esc(r["target"])}</td><td>{status_cell}</td>{tally}<td class="num">{esc(dur)}</td>'
            f'<td class="nowrap"><a href="{esc(href)}.html">html</a> · <a href="{esc(href)}.ipynb">ipynb</a> · '
            f'<a href="{esc(href)}.json">json</a></td></tr>')
