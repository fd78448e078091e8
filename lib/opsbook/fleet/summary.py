"""The fleet summary: fleet--RUNBOOK--HHMMSSZ.html and .json, one sortable row per target, a chart of a key metric."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..core.display import COLORS, badge, esc, human_value

# The metrics worth seeing side by side, in this order, when the runbook recorded them.
KEY_METRICS = ("database_size_bytes", "days_until_disk_full", "days_until_scaling_trigger", "connections_peak",
               "connections_used", "monthly_cost_usd", "incident_priority", "blocked_sessions", "cache_hit_pct",
               "backup_age_hours", "restore_seconds", "best_saving_usd")
MAX_METRICS = 5
INSECURE = ("the Dask scheduler was reached over plain tcp:// (--insecure): whoever can reach it runs code as its "
            "workers, and the reports crossed the network unencrypted. See docs/fleet-security.md.")
SORT_JS = """<script>
document.querySelectorAll('table.ob-fleet th').forEach(function (th, i) {
  th.style.cursor = 'pointer';
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0], asc = th.dataset.dir !== 'asc';
    th.dataset.dir = asc ? 'asc' : 'desc';
    Array.from(body.rows).sort(function (a, b) {
      var x = a.cells[i].dataset.v || a.cells[i].textContent, y = b.cells[i].dataset.v || b.cells[i].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    }).forEach(function (r) { body.appendChild(r); });
  });
});
</script>"""
CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:90em;padding:0 1em;color:#1d2939}
table{border-collapse:collapse;width:100%;font-size:.92em}th,td{border-bottom:1px solid #eee;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ob-badge{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:.85em;font-weight:600}
.muted{color:#667085}.bar{height:14px;background:#175cd3;border-radius:2px}
.ob-insecure{border-left:4px solid #b42318;padding:4px 8px;background:#fef3f2}
@media print{th{cursor:auto}}"""


def retry_note(row: dict[str, Any]) -> str:
    """What happened before the last attempt, in one line: "attempt 2; attempt 1 failed on w1 after 3.2 s: ..."."""
    before = [f"attempt {a['attempt']} failed on {a['worker']} after {a['duration_s'] or 0:.1f} s: {a['error']}"
              for a in row["attempt_log"][:-1]]
    return "; ".join([f"attempt {row['attempts']}", *before])


def key_metrics(rows: list[dict[str, Any]]) -> list[str]:
    seen = {k for r in rows for k in r["metrics"]}
    return [k for k in KEY_METRICS if k in seen][:MAX_METRICS]


def write_summary(result, root: Path, *, scheduler: str | None, workers: int, insecure: bool = False) -> None:
    started = result.started
    folder = root / f"{started:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    base = f"fleet--{result.runbook}--{started:%H%M%S}Z"
    stem = folder / base
    n = 1
    while True:
        try:
            os.close(os.open(f"{stem}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            break
        except FileExistsError:
            n += 1
            stem = folder / f"{base}-{n}"
    rows = result.rows
    ok = sum(1 for r in rows if r["status"] == "ok")
    retried = sum(1 for r in rows if r.get("retried"))
    result.totals = {"targets": len(rows), "ok": ok, "ran": ok, "failed": len(rows) - ok, "retried": retried,
                     "attempts": sum(r.get("attempts", 1) for r in rows),
                     # the worst finding of each target that ran; a failed target is counted as failed, not as "ok"
                     "by_worst": {s: sum(1 for r in rows if r["status"] == "ok" and r["worst"] == s)
                                  for s in ("critical", "warning", "info", "ok")},
                     "duration_s": result.duration_s, "mode": f"dask {scheduler}" if scheduler else
                     f"local, {workers} workers", "workers": sorted({r["worker"] for r in rows}),
                     "insecure": insecure}  # a plain tcp:// scheduler, chosen with --insecure
    result.summary_html, result.summary_json = Path(f"{stem}.html"), Path(f"{stem}.json")
    metrics = key_metrics(rows)
    worst = max((r["worst"] for r in rows), key=lambda s: {"critical": 3, "warning": 2, "info": 1}.get(s, 0),
                default="ok")
    sidecar = {"runbook": f"fleet {result.runbook}", "target": f"{len(rows)} targets", "kind": "fleet",
               "status": "ok" if ok == len(rows) else "failed",
               "started_at": f"{started:%Y-%m-%dT%H:%M:%SZ}", "duration_s": result.duration_s,
               "findings": [{"check": "fleet.worst", "severity": worst, "title": f"worst across {len(rows)} targets"}],
               "metrics": {"targets": len(rows), "targets_failed": len(rows) - ok, "targets_retried": retried},
               "error": None if ok == len(rows) else f"{len(rows) - ok} of {len(rows)} targets failed",
               "totals": result.totals,
               "rows": [{k: v for k, v in r.items() if k != "result"} for r in rows]}
    tmp = result.summary_json.with_name(f".{result.summary_json.name}.tmp")
    tmp.write_text(json.dumps(sidecar, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, result.summary_json)
    html = render(result, metrics, result.summary_html, root)
    tmp = result.summary_html.with_name(f".{result.summary_html.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, result.summary_html)
    from ..report.index import write_index  # noqa: PLC0415

    write_index(root)


def render(result, metrics: list[str], page: Path, root: Path) -> str:
    rows = result.rows
    head = ["target", "status", "worst", "critical", "warning", "worst findings", *metrics, "worker", "attempts", "s"]
    body = []
    for r in rows:
        link = esc(os.path.relpath(r["report_html"], page.parent).replace(os.sep, "/")) if r["report_html"] else ""
        name = f'<a href="{link}">{esc(r["target"])}</a>' if link else esc(r["target"])
        status = "ran" if r["status"] == "ok" else f'failed<br><span class="muted">{esc(r["error"])}</span>'
        if r.get("retried"):
            status += f'<br><span class="muted">{esc(retry_note(r))}</span>'
        rank = {"critical": 3, "warning": 2, "info": 1, "ok": 0}[r["worst"]]
        if r["status"] != "ok" and not any(r["counts"].values()):  # it found nothing because it did not run
            rank, worst = -1, '<span class="muted">none: failed</span>'
        else:
            worst = badge(r["worst"])
        top = "<br>".join(f"{badge(f['severity'])} {esc(f.get('title'))}" for f in r["top"]) or \
            '<span class="muted">none</span>'
        cells = [f"<td>{name}</td>", f'<td data-v="{0 if r["status"] == "ok" else 1}">{status}</td>',
                 f'<td data-v="{rank}">{worst}</td>',
                 f'<td class="num">{r["counts"]["critical"]}</td>', f'<td class="num">{r["counts"]["warning"]}</td>',
                 f"<td>{top}</td>"]
        for m in metrics:
            v = r["metrics"].get(m)
            shown = human_value(m, v) if v is not None else ""
            cells.append(f'<td class="num" data-v="{esc(v if isinstance(v, (int, float)) else "")}">{esc(shown)}</td>')
        cells += [f'<td class="muted">{esc(r["worker"])}</td>', f'<td class="num">{r.get("attempts", 1)}</td>',
                  f'<td class="num">{r["duration_s"]:.1f}</td>']
        body.append("<tr>" + "".join(cells) + "</tr>")
    t = result.totals
    index = os.path.relpath(root / "index.html", page.parent).replace(os.sep, "/")
    retried = f", {t['retried']} retried (see the attempts)" if t["retried"] else ""
    worst = ", ".join(f"{badge(s)} {n}" for s, n in t["by_worst"].items() if n) or "none ran"
    intro = (f"{t['targets']} targets, {t['ran']} ran, {t['failed']} failed{retried}, in {result.duration_s:,.1f} s "
             f"({esc(t['mode'])}). Worst severity of those that ran: {worst}. Click a column to sort.")
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>fleet: {esc(result.runbook)}</title><style>{CSS}</style></head><body>"
            f"<h1>Fleet: {esc(result.runbook)} <span class=\"muted\">{result.started:%Y-%m-%d %H:%M:%S} UTC</span></h1>"
            f"<p>{intro}</p>" + (f'<p class="ob-insecure"><strong>Insecure run:</strong> {esc(INSECURE)}</p>'
                                 if t.get("insecure") else "")
            + f"<p><a href=\"{esc(index)}\">all reports</a></p>"
            + chart(rows, metrics[0] if metrics else None)
            + '<table class="ob-fleet"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{''.join(body)}</tbody></table>{SORT_JS}</body></html>")


def chart(rows: list[dict[str, Any]], metric: str | None) -> str:
    """Horizontal bars of one key metric across targets, drawn in HTML (offline, prints as it shows)."""
    if metric is None:
        return ""
    values = [(r["target"], r["metrics"].get(metric)) for r in rows]
    values = [(t, float(v)) for t, v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not values:
        return ""
    top = max(v for _, v in values) or 1.0
    bars = "".join(
        f'<tr><td>{esc(t)}</td><td style="width:70%"><div class="bar" style="width:{max(100 * v / top, 0.5):.1f}%;'
        f'background:{COLORS["info"]}"></div></td><td class="num">{esc(human_value(metric, v))}</td></tr>'
        for t, v in sorted(values, key=lambda x: -x[1]))
    return f"<h2>{esc(metric)} by target</h2><table>{bars}</table>"
