"""An executed runbook as an offline HTML report: header, failure banner, cells, and plotly.js from a local copy."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.display import COLORS, STYLE, badge, esc
from .escape import strip_ansi, text_esc

PLOTLY_MARKERS = ("Plotly.newPlot", "Plotly.react")

CSS = """
body{margin:0;background:#fff;color:#1f2328;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1200px;margin:0 auto;padding:0 1.2em 3em}
.ob-report{margin:0 auto 1.5em;padding:1em 1.2em;border-bottom:1px solid #e4e4e7;max-width:1200px}
.ob-report h1{margin:0 0 .3em;font-size:1.6em}
.ob-report .ob-facts{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;margin:0;font-size:.95em}
.ob-report dt{color:#667085}.ob-report dd{margin:0}
code,pre{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.ob-status{display:inline-block;padding:1px 10px;border-radius:9px;color:#fff;font-size:.6em;vertical-align:middle}
.ob-failure{border:2px solid #b42318;background:#fef3f2;padding:.8em 1.2em;margin:0 auto 1.5em;border-radius:6px;
  max-width:1160px}
.ob-failure h2{color:#b42318;margin:0 0 .4em;font-size:1.25em}
.ob-failure pre{white-space:pre-wrap;background:#fff;border:1px solid #fda29b;padding:.5em;max-height:30em;overflow:auto}
.ob-failure summary{cursor:pointer;color:#b42318}
.jp-Cell{margin:.4em 0}
.jp-MarkdownCell h1{font-size:1.5em}.jp-MarkdownCell h2{font-size:1.3em;margin-top:1.4em;border-bottom:1px solid #eaecf0}
.ob-input pre{background:#f6f8fa;border:1px solid #eaecf0;border-radius:4px;padding:.5em .8em;overflow:auto}
.ob-output{overflow-x:auto}
.ob-output pre{white-space:pre-wrap;margin:.3em 0}
.ob-stderr{background:#fff5f5}
.ob-stopped{border-left:4px solid #b42318;padding:.3em .8em;background:#fef3f2}
table{border-collapse:collapse}img{max-width:100%}
"""

@dataclass
class Header:
    """What the top of the report says about the run (values are escaped when rendered)."""

    runbook: str
    target: str
    target_display: str
    status: str
    started_at: str
    duration_s: float
    parameters: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    server_version: str | None = None
    role: str | None = None
    superuser: bool = False
    in_recovery: bool | None = None  # pg_is_in_recovery() at connect; None when the run never connected
    primary: str | None = None  # on a standby: the primary it streams from, as the checks name it
    error: dict[str, Any] | None = None  # {"ename", "evalue", "cell_index", "source", "traceback"}
    findings: list[dict[str, Any]] = field(default_factory=list)  # the sidecar's; listed up top on a failed run
    title: str | None = None  # the runbook's own title for this run (`record_meta(title=...)`), e.g. with its month


def export(nb, html_path: Path, header: Header, *, reports_root: Path, with_code: bool = False,
           self_contained: bool = False) -> Path:
    """Write the report for an executed notebook (a NotebookNode) to `html_path`; returns the path."""
    html_path = Path(html_path)
    page = render(nb, html_path, header, reports_root=reports_root, with_code=with_code,
                  self_contained=self_contained)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(html_path, page)
    return html_path


def render(nb, html_path: Path, header: Header, *, reports_root: Path, with_code: bool = False,
           self_contained: bool = False) -> str:
    """The report page as text: one small inlined stylesheet, plotly.js only when a chart needs it, no template.

    nbconvert's lab template carried 265 kB of CSS and a Jinja environment per export; a report needs headings,
    prose, tables and charts, so cells are rendered here (see report_cells)."""
    from .cells import cells_html  # noqa: PLC0415

    tag = plotly_tag(Path(html_path), reports_root, self_contained) if has_plotly(nb) else ""
    title = header.title or f"{header.runbook} on {header.target}, {header.started_at}"
    body = cells_html(nb, with_code=with_code, failed=header.error is not None)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{esc(title)}</title>'
            f"<style>{CSS}</style>{STYLE}{tag}</head>\n<body>"
            f"{header_html(header, Path(html_path), reports_root)}<main>{body}</main></body></html>\n")


def has_plotly(nb) -> bool:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            markup = out.get("data", {}).get("text/html", "")
            markup = "".join(markup) if isinstance(markup, list) else markup
            if any(m in markup for m in PLOTLY_MARKERS):
                return True
    return False


def plotly_tag(html_path: Path, reports_root: Path, self_contained: bool) -> str:
    """The one <script> that loads plotly.js: inline, or the shared copy in the reports folder by relative path."""
    source = plotly_source()
    if self_contained:
        js = source.read_text(encoding="utf-8").replace("</script", "<\\/script")
        return f'<script type="text/javascript">{js}</script>'
    shared = ensure_shared_plotly(reports_root)
    rel = os.path.relpath(shared, Path(html_path).parent).replace(os.sep, "/")
    return f'<script type="text/javascript" src="{esc(rel)}"></script>'


def plotly_source() -> Path:
    """plotly.min.js as shipped inside the installed plotly package."""
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.find_spec("plotly")
    path = Path(spec.origin).parent / "package_data" / "plotly.min.js"
    if not path.exists():  # pragma: no cover - plotly always ships it
        from ..core.errors import OpsbookError  # noqa: PLC0415

        raise OpsbookError(f"plotly.js not found at {path}; reinstall plotly")
    return path


def plotly_version(source: Path | None = None) -> str:
    """The plotly.js version from the bundle's banner comment (`* plotly.js v3.1.1`)."""
    with open(source or plotly_source(), encoding="utf-8") as f:
        m = re.search(r"plotly\.js v(\d+\.\d+\.\d+\S*)", f.read(400))
    return m.group(1) if m else "unknown"


def ensure_shared_plotly(reports_root: Path) -> Path:
    """reports/plotly-<version>.min.js, copied from the plotly package when absent (atomically)."""
    source = plotly_source()
    target = Path(reports_root) / f"plotly-{plotly_version(source)}.min.js"
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        target.parent.mkdir(parents=True, exist_ok=True)
        from ..config.paths import atomic_copy  # noqa: PLC0415 - no .tmp left behind on a full disk

        atomic_copy(source, target)
    return target


def header_html(h: Header, html_path: Path, reports_root: Path) -> str:
    # as the index does: the badge is the run's worst finding, and whether it ran to the end is said in words
    if h.status != "ok":
        status_label, status_color = h.status, COLORS["critical"]
    else:
        worst = next((s for s in ("critical", "warning", "info", "ok") if h.counts.get(s)), None)
        status_label = f"ran · worst {worst}" if worst else "ran"
        status_color = COLORS[worst or "ok"]
    params = ", ".join(f"<code>{esc(k)}={esc(_short_repr(v))}</code>" for k, v in h.parameters.items())
    tally = " ".join(f"{badge(s)} {n}" for s, n in h.counts.items() if n) or "none recorded"
    index = os.path.relpath(Path(reports_root) / "index.html", Path(html_path).parent).replace(os.sep, "/")
    facts = [("target", f"<b>{esc(h.target)}</b> <span class=\"ob-muted\">{esc(h.target_display)}</span>"),
             ("started", f"{esc(h.started_at.replace('T', ' ').replace('Z', ' UTC'))} · ran {h.duration_s:,.1f} s"),
             ("parameters", params or '<span class="ob-muted">defaults</span>'),
             ("findings", tally)]
    if h.server_version:
        facts.insert(2, ("server", f"PostgreSQL {esc(h.server_version)}"))
    if h.role:
        note = (f' <span style="color:{COLORS["warning"]}">superuser: more than a diagnosis needs (README, "A '
                'least-privilege monitoring role")</span>' if h.superuser else "")
        facts.insert(3 if h.server_version else 2, ("role", f"{esc(h.role)}{note}"))
    if h.in_recovery is not None:
        where = 3 if h.server_version else 2
        facts.insert(where, ("server role", "primary (not in recovery)" if not h.in_recovery else
                             f'<b style="color:{COLORS["warning"]}">standby (in recovery)</b>: read-only; usage '
                             f"counters are its own, maintenance and index decisions belong on "
                             f"{esc(h.primary or 'the primary')}"))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    return (f'<header class="ob-report"><h1>{esc(h.title or h.runbook)} '
            f'<span class="ob-status" style="background:{status_color}">{esc(status_label)}</span></h1>'
            f'<dl class="ob-facts">{dl}</dl><p><a href="{esc(index)}">all reports</a></p></header>'
            + failure_html(h.error, h.findings if h.error else None))


def failure_html(error: dict[str, Any] | None, findings: list[dict[str, Any]] | None = None) -> str:
    """The banner at the very top of a failed run: one line of reason, the cell and traceback folded, and every
    finding recorded before the failure (the runbook's own summary cell may never have run)."""
    if not error:
        return ""
    where = error.get("where") or "an unknown cell"
    trace = strip_ansi("\n".join(error.get("traceback") or []))
    source = f"<p>The cell:</p><pre>{text_esc(error['source'])}</pre>" if error.get("source") else ""
    folded = (f"<details><summary>the cell and the traceback</summary>{source}"
              + (f"<p>Traceback:</p><pre>{text_esc(trace)}</pre>" if trace else "") + "</details>"
              if source or trace else "")
    jump = '<p><a href="#papermill-error-cell">jump to where it stopped</a></p>' if error.get("anchor") else ""
    recorded = ""
    if findings is not None:
        from ..core.display import findings_html  # noqa: PLC0415
        from ..core.findings import Finding  # noqa: PLC0415

        listed = findings_html([Finding.from_dict(f) for f in findings]) if findings else \
            '<p class="ob-muted">none: the run stopped before any check recorded a finding</p>'
        recorded = f"<h3>Findings recorded before the failure ({len(findings)})</h3>{listed}"
    return (f'<section class="ob-failure"><h2>The runbook failed: {text_esc(error.get("ename"))} in {text_esc(where)}</h2>'
            f'<p><b>{text_esc(error.get("evalue"))}</b></p>{folded}{jump}{recorded}</section>')


def _short_repr(value: Any, limit: int = 120) -> str:
    s = value if isinstance(value, str) else repr(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _write_atomic(path: Path, text: str) -> None:
    from ..config.paths import atomic_write_text  # noqa: PLC0415 - no .tmp left behind on a full disk

    atomic_write_text(path, text, tmp_name=f".{path.name}.tmp")
