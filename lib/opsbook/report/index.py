"""reports/index.html: the newest run of each runbook per target, then every run by month; offline and escaped.

The newest-report table shows, per runbook and target, the newest report (HTML) and beside it the newest run
stepped through in JupyterLab (a sidecar only): a Lab run never stands in for the report.

Each run is read from its sidecar once: a summary of it is kept in `.index-cache.json` beside the index, so a
new run costs one sidecar read, not one per run ever made. The index page holds the newest month; each older
month has its own page (`index-YYYY-MM.html`), rewritten only when a run of that month appears or disappears.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..core.display import badge, esc

DAY_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SIDECAR = re.compile(r"^.+--.+--\d{6}Z(-\d+)?\.json$")
SEVERITIES = ("critical", "warning", "info", "ok")
CACHE = ".index-cache.json"  # per day folder: its mtime; per month: count, tally, newest runs
CACHE_VERSION = 2  # 2: the digest keeps the newest Lab run apart
ERROR_LINE = re.compile(r"^(?P<ename>[A-Za-z_][\w.]*): (?P<evalue>.*?)(?: \((?P<where>(?:code cell|before any "
                        r"cell)[^()]*(?:\([^()]*\)[^()]*)*)\))?$", re.S)
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:80em;padding:0 1em;
  color:#1d2939}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #e4e4e7}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.num,td.nowrap{white-space:nowrap}
.ob-badge{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:.85em;font-weight:600}
.muted{color:#667085}.failed{color:#b42318;font-weight:600}
.filters{margin:1em 0}.filters label{margin-right:1.2em}
@media print{.filters{display:none}}
"""
# a few lines, inline: the page loads nothing; without script every row simply stays visible
FILTER_JS = """<script>
function obFilter(){var r=document.getElementById('f-runbook').value,t=document.getElementById('f-target').value;
document.querySelectorAll('tr[data-runbook]').forEach(function(e){
e.hidden=(r!==''&&e.dataset.runbook!==r)||(t!==''&&e.dataset.target!==t);});}
</script>"""


def index_path(root: Path) -> Path:
    return Path(root) / "index.html"


def month_page(month: str) -> str:
    return f"index-{month}.html"


def summarize(data: dict[str, Any], stem: str) -> dict[str, Any]:
    """What the index shows of one run (a few hundred bytes, whatever the size of its findings)."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for f in data.get("findings") or []:
        if isinstance(f, dict) and f.get("severity") in counts:
            counts[f["severity"]] += 1
    worst = next((s for s in SEVERITIES if counts[s]), None)
    duration = data.get("duration_s")
    return {"stem": stem, "runbook": str(data["runbook"]), "target": str(data["target"]),
            "status": str(data.get("status")), "started_at": str(data.get("started_at") or ""),
            "duration_s": duration if isinstance(duration, (int, float)) else None, "counts": counts,
            "worst": worst, "error": None if not data.get("error") else str(data["error"]),
            "files": _files(data), "interactive": bool(data.get("interactive"))}


def is_lab(run: dict[str, Any]) -> bool:
    """A run stepped through in JupyterLab (summaries cached before the flag say so by their files)."""
    return bool(run.get("interactive")) or run.get("files") == ["json"]


def _files(data: dict[str, Any]) -> list[str]:
    """Which of the run's files exist to link: a JupyterLab session leaves only its sidecar, a fleet summary and
    the record of a scheduled run killed before it wrote its report (schedule/noreport.py) have no notebook."""
    if data.get("interactive"):
        return ["json"]
    if data.get("kind") in ("fleet", "no_report"):
        return ["html", "json"]
    return ["html", "ipynb", "json"]


def failure_reason(error: str | None) -> tuple[str, str]:
    """(one line a reader understands, the exception's type for the tooltip) from a sidecar's `error`."""
    if not error:
        return "", ""
    text = " ".join(str(error).split())
    m = ERROR_LINE.match(text)
    if not m:
        return _cut(text), ""
    evalue, where = m.group("evalue").strip(), m.group("where")
    what = evalue or m.group("ename")
    return _cut(f"stopped at {where}: {what}" if where else what), m.group("ename")


def _cut(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


# ------------------------------------------------------------------ reading, incrementally
def _read_json(path: Path, default: Any) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, type(default)) else default
    except (OSError, ValueError):
        return default


def _day_folders(root: Path) -> dict[str, tuple[str, int]]:
    """{day: (path, folder mtime)}: a folder's mtime moves when a sidecar is added, replaced or removed in it."""
    if not root.is_dir():
        return {}
    with os.scandir(root) as entries:
        return {d.name: (d.path, d.stat().st_mtime_ns) for d in entries if d.is_dir() and DAY_FOLDER.match(d.name)}


def _scan_month(days: dict[str, tuple[str, int]], month: str, cached: dict[str, Any]) -> dict[str, Any]:
    """Every run of one month's day folders; a sidecar is parsed only when new or changed on disk."""
    runs: dict[str, Any] = {}
    for day, (path, _) in sorted(days.items()):
        if day[:7] != month:
            continue
        with os.scandir(path) as entries:
            for entry in entries:
                if not (entry.name.endswith(".json") and SIDECAR.match(entry.name)):
                    continue
                stem = f"{day}/{entry.name[:-5]}"
                st = entry.stat()
                key = [st.st_mtime_ns, st.st_size]
                old = cached.get(stem)
                if old is not None and old.get("key") == key:
                    runs[stem] = old
                    continue
                data = _read_json(Path(entry.path), {})
                if {"runbook", "target", "status"} <= data.keys():  # else half-written or foreign: skipped
                    runs[stem] = {**summarize(data, stem), "key": key}
    return runs


def _month(run: dict[str, Any]) -> str:
    return run["stem"][:7]


def _newest_first(runs) -> list[dict[str, Any]]:
    return sorted(runs, key=lambda r: (r.get("started_at") or "", r["stem"]), reverse=True)


def _refresh(root: Path) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]], set[str]]:
    """(digest per month, runs of the months read, months whose runs changed), newest month first.

    Only day folders whose mtime moved (and the newest one) are listed again; only their months' caches are
    read and rewritten. The digest (count, tally, newest run per runbook and target) is all the index needs of
    the other months."""
    state = root / CACHE
    cache = _read_json(state, {})
    if cache.get("version") != CACHE_VERSION:
        cache = {"version": CACHE_VERSION, "days": {}, "months": {}}
    days = _day_folders(root)
    newest_day = max(days, default="")
    stale = {d for d, (_, mtime) in days.items() if cache["days"].get(d) != mtime or d == newest_day}
    stale |= set(cache["days"]) - set(days)
    months = {d[:7] for d in stale}
    folder = root / ".index"
    folder.mkdir(exist_ok=True)
    read: dict[str, list[dict[str, Any]]] = {}
    changed: set[str] = set()
    for month in sorted(months):
        path = folder / f"{month}.json"
        before = _read_json(path, {})
        runs = _scan_month(days, month, before)
        if runs != before:
            changed.add(month)
        if runs:
            _write(path, json.dumps(runs, separators=(",", ":")))
        else:
            path.unlink(missing_ok=True)
        read[month] = _newest_first(runs.values())
        cache["months"][month] = _digest(read[month])
    cache["months"] = {m: d for m, d in cache["months"].items() if d["count"]}
    cache["days"] = {d: mtime for d, (_, mtime) in days.items()}
    _write(state, json.dumps(cache, separators=(",", ":")))
    ordered = dict(sorted(cache["months"].items(), reverse=True))
    return ordered, read, changed


def _digest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """count, tally, and per runbook and target the newest report and, apart, the newest Lab run."""
    latest: dict[str, dict[str, Any]] = {}
    lab: dict[str, dict[str, Any]] = {}
    for r in runs:
        (lab if is_lab(r) else latest).setdefault(f"{r['runbook']}\x00{r['target']}", r)
    return {"count": len(runs), "tally": _month_tally(runs), "latest": list(latest.values()),
            "lab": list(lab.values())}


def _newest(months: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per runbook and target (newest month first): the newest report, with the newest Lab run under "lab"; a
    runbook only ever stepped through in Lab has no report (`None` in "report")."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    lab: dict[tuple[str, str], dict[str, Any]] = {}
    for digest in months.values():
        for r in digest["latest"]:
            latest.setdefault((r["runbook"], r["target"]), r)
        for r in digest.get("lab", []):
            lab.setdefault((r["runbook"], r["target"]), r)
    return [{"runbook": k[0], "target": k[1], "report": latest.get(k), "lab": lab.get(k)}
            for k in sorted({*latest, *lab}, key=lambda k: (k[1], k[0]))]


def _month_runs(root: Path, month: str, read: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    if month not in read:
        read[month] = _newest_first(_read_json(root / ".index" / f"{month}.json", {}).values())
    return read[month]


def collect(root: Path) -> list[dict[str, Any]]:
    """Every readable run under root/YYYY-MM-DD/ as its summary, newest first (refreshes the cache)."""
    root = Path(root)
    months, read, _ = _refresh(root)
    return [r for m in months for r in _month_runs(root, m, read)]


def write_index(root: Path) -> Path:
    """Refresh the index (and the month pages whose runs changed); write atomically; return index.html."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    months, read, changed = _refresh(root)
    names = list(months)
    for month in names[1:]:
        page = root / month_page(month)
        if month in changed or not page.is_file():
            _write(page, render_month(month, _month_runs(root, month, read), names))
    for page in root.glob("index-*.html"):  # a month with no run left, or now the newest
        if page.name not in {month_page(m) for m in names[1:]}:
            page.unlink(missing_ok=True)
    first = _month_runs(root, names[0], read) if names else []
    _write(index_path(root), render_page(first, months, _newest(months)))
    return index_path(root)


def _write(path: Path, text: str) -> None:
    from ..config.paths import atomic_write_text  # noqa: PLC0415 - no .tmp left behind on a full disk

    atomic_write_text(path, text)


# ------------------------------------------------------------------ rendering
def render(runs: list[dict[str, Any]]) -> str:
    """The index page for a list of run summaries (newest first)."""
    by_month: dict[str, list[dict[str, Any]]] = {}
    for r in _newest_first(runs):
        by_month.setdefault(_month(r), []).append(r)
    months = {m: _digest(rs) for m, rs in sorted(by_month.items(), reverse=True)}
    first = by_month[next(iter(months))] if months else []
    return render_page(first, months, _newest(months))


def render_page(first: list[dict[str, Any]], months: dict[str, dict[str, Any]],
                newest: list[dict[str, Any]]) -> str:
    """The newest report of each runbook per target (the newest Lab run beside it), the newest month in full,
    links to the older months' pages."""
    if not months:
        body = '<p class="muted">No runs yet: try <code>opsbook run incident-triage</code>.</p>'
        return _page("opsbook reports", body, runs=[])
    names = list(months)
    total = sum(d["count"] for d in months.values())
    body = (f'<p class="muted">{total:,} runs. The badge is the worst finding of the run; the status says '
            "whether it ran to the end.</p>"
            f"<h2>Newest report of each runbook, per target</h2>{_newest_table(newest)}"
            f"{_filters(first + newest)}<h2>{esc(names[0])}</h2>{_table(first)}")
    if len(names) > 1:
        links = "".join(f'<li><a href="{esc(month_page(m))}">{esc(m)}</a> <span class="muted">'
                        f"{months[m]['count']:,} runs{esc(months[m]['tally'])}</span></li>" for m in names[1:])
        body += f"<h2>Earlier months</h2><ul>{links}</ul>"
    return _page("opsbook reports", body, runs=first + newest)


def render_month(month: str, runs: list[dict[str, Any]], months: list[str]) -> str:
    body = (f'<p><a href="index.html">← all reports</a></p><p class="muted">{len(runs):,} runs in '
            f"{esc(month)}, newest first.</p>{_filters(runs)}<h2>{esc(month)}</h2>{_table(runs)}")
    return _page(f"opsbook reports, {month}", body, runs=runs)


def _page(title: str, body: str, *, runs: list[dict[str, Any]]) -> str:
    script = FILTER_JS if runs else ""
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<title>{esc(title)}</title><meta name="viewport" content="width=device-width, initial-scale=1.0">'
            f"<style>{CSS}</style>{script}</head><body><h1>{esc(title)}</h1>{body}</body></html>")


def _filters(runs: list[dict[str, Any]]) -> str:
    def select(name: str, values: set[str]) -> str:
        options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in sorted(values))
        return (f'<label>{name} <select id="f-{name}" onchange="obFilter()"><option value="">all</option>'
                f"{options}</select></label>")

    return (f'<div class="filters">{select("runbook", {r["runbook"] for r in runs})}'
            f'{select("target", {r["target"] for r in runs})}</div>')


def _month_tally(runs: list[dict[str, Any]]) -> str:
    worst = {s: sum(1 for r in runs if r.get("worst") == s) for s in ("critical", "warning")}
    failed = sum(1 for r in runs if r.get("status") != "ok")
    parts = [f"{n} with {s}" for s, n in worst.items() if n] + ([f"{failed} failed"] if failed else [])
    return f": {', '.join(parts)}" if parts else ""


def _table(runs: list[dict[str, Any]]) -> str:
    head = ("<tr><th>started (UTC)</th><th>runbook</th><th>target</th><th>worst</th><th>status</th>"
            + "".join(f"<th>{s}</th>" for s in SEVERITIES) + "<th>duration</th><th>files</th></tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(_row(r) for r in runs)}</tbody></table>"


def _newest_table(newest: list[dict[str, Any]]) -> str:
    """One row per runbook and target: its newest report, then the newest run stepped through in JupyterLab."""
    head = ("<tr><th>started (UTC)</th><th>runbook</th><th>target</th><th>worst</th><th>status</th>"
            + "".join(f"<th>{s}</th>" for s in SEVERITIES)
            + "<th>duration</th><th>files</th><th>stepped through in JupyterLab</th></tr>")
    rows = []
    for n in newest:
        lab = _lab_cell(n["lab"])
        if n["report"] is not None:
            rows.append(_row(n["report"], extra=lab))
            continue
        blank = "".join("<td></td>" for _ in SEVERITIES)
        rows.append(f'<tr data-runbook="{esc(n["runbook"])}" data-target="{esc(n["target"])}"><td></td>'
                    f'<td>{esc(n["runbook"])}</td><td>{esc(n["target"])}</td><td></td>'
                    f'<td><span class="muted">no report yet</span></td>{blank}<td></td><td></td>{lab}</tr>')
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _lab_cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return '<td class="muted">none</td>'
    started = (r.get("started_at") or "").replace("T", " ").rstrip("Z")
    worst = badge(r["worst"]) if r.get("worst") else '<span class="muted">no findings</span>'
    status = "ran" if r.get("status") == "ok" else f'<span class="failed">{esc(r.get("status"))}</span>'
    return (f'<td class="nowrap"><a href="{esc(quote(r["stem"]))}.json">{esc(started)}</a> {worst} '
            f"{status}</td>")


def _row(r: dict[str, Any], extra: str = "") -> str:
    href = quote(r["stem"])
    counts = r.get("counts") or {}
    worst = badge(r["worst"]) if r.get("worst") else '<span class="muted">no findings</span>'
    if r.get("status") == "ok":
        status = "ran"
    else:
        reason, ename = failure_reason(r.get("error"))
        title = f' title="{esc(ename)}"' if ename else ""
        status = (f'<span class="failed">{esc("failed" if r.get("status") == "failed" else r.get("status"))}'
                  f"</span>" + (f'<br><span class="muted"{title}>{esc(reason)}</span>' if reason else ""))
    tally = "".join(f'<td class="num">{badge(s) + " " + str(counts[s]) if counts.get(s) else ""}</td>'
                    for s in SEVERITIES)
    duration = r.get("duration_s")
    dur = f"{duration:,.1f} s" if isinstance(duration, (int, float)) else ""
    started = (r.get("started_at") or "").replace("T", " ").rstrip("Z")
    files = r.get("files") or ["html", "ipynb", "json"]
    if files == ["json"]:
        status += '<br><span class="muted">stepped through in JupyterLab</span>'
    links = " · ".join(f'<a href="{esc(href)}.{f}">{f}</a>' for f in files)
    return (f'<tr data-runbook="{esc(r["runbook"])}" data-target="{esc(r["target"])}">'
            f'<td class="nowrap">{esc(started)}</td><td><a href="{esc(href)}.{files[0]}">{esc(r["runbook"])}</a></td>'
            f'<td>{esc(r["target"])}</td><td>{worst}</td><td>{status}</td>{tally}<td class="num">{esc(dur)}</td>'
            f'<td class="nowrap">{links}</td>{extra}</tr>')

