"""An executed runbook as an offline HTML report: header, failure banner, cells, and plotly.js from a local copy."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .display import COLORS, STYLE, badge, esc

TEMPLATES = Path(__file__).parent / "templates"
HIDDEN_TAGS = {"parameters", "injected-parameters"}
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
PLOTLY_MARKERS = ("Plotly.newPlot", "Plotly.react")

CSS = """
/* JupyterLab right-aligns every cell of an output table (specificity 0,2,1); opsbook tables align by content */
.jp-RenderedHTMLCommon table.ob-table td,.jp-RenderedHTMLCommon table.ob-table th{text-align:left}
.jp-RenderedHTMLCommon table.ob-table td.num{text-align:right}
.ob-report{font-family:var(--jp-ui-font-family,system-ui,sans-serif);margin:0 0 1.5em;padding:1em 1.2em;
  border-bottom:1px solid #e4e4e7}
.ob-report h1{margin:0 0 .3em;font-size:1.6em}
.ob-report .ob-facts{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;margin:0;font-size:.95em}
.ob-report dt{color:#667085}.ob-report dd{margin:0}
.ob-report code{font-size:.9em}
.ob-status{display:inline-block;padding:1px 10px;border-radius:9px;color:#fff;font-size:.6em;vertical-align:middle}
.ob-failure{border:2px solid #b42318;background:#fef3f2;padding:.8em 1.2em;margin:0 0 1.5em;border-radius:6px;
  font-family:var(--jp-ui-font-family,system-ui,sans-serif)}
.ob-failure h2{color:#b42318;margin:0 0 .4em;font-size:1.25em}
.ob-failure pre{white-space:pre-wrap;background:#fff;border:1px solid #fda29b;padding:.5em;font-size:.85em;
  max-height:30em;overflow:auto}
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
    error: dict[str, Any] | None = None  # {"ename", "evalue", "cell_index", "source", "traceback"}


def export(nb, html_path: Path, header: Header, *, reports_root: Path, with_code: bool = False,
           self_contained: bool = False) -> Path:
    """Write the report for an executed notebook (a NotebookNode) to `html_path`; returns the path."""
    from nbconvert import HTMLExporter  # noqa: PLC0415 - heavy; only when exporting
    from traitlets.config import Config  # noqa: PLC0415

    nb = _prepared(nb, header)
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = HIDDEN_TAGS
    c.HTMLExporter.exclude_input = not with_code
    c.HTMLExporter.exclude_input_prompt = not with_code
    c.HTMLExporter.exclude_output_prompt = True
    exporter = HTMLExporter(config=c, template_name="opsbook", extra_template_basedirs=[str(TEMPLATES)])
    html_path = Path(html_path)
    tag = plotly_tag(html_path, reports_root, self_contained) if has_plotly(nb) else ""
    resources = {"opsbook": {"plotly_tag": tag, "css": CSS, "header": header_html(header, html_path, reports_root)},
                 "metadata": {"name": html_path.stem}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(html_path, body)
    return html_path


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
        from .errors import OpsbookError  # noqa: PLC0415

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
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".plotly-", suffix=".tmp")
        os.close(fd)
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    return target


def header_html(h: Header, html_path: Path, reports_root: Path) -> str:
    status_color = COLORS["ok"] if h.status == "ok" else COLORS["critical"]
    params = ", ".join(f"<code>{esc(k)}={esc(_short_repr(v))}</code>" for k, v in h.parameters.items())
    tally = " ".join(f"{badge(s)} {n}" for s, n in h.counts.items() if n) or "none recorded"
    index = os.path.relpath(Path(reports_root) / "index.html", Path(html_path).parent).replace(os.sep, "/")
    facts = [("target", f"<b>{esc(h.target)}</b> <span class=\"ob-muted\">{esc(h.target_display)}</span>"),
             ("started", f"{esc(h.started_at.replace('T', ' ').replace('Z', ' UTC'))} · ran {h.duration_s:,.1f} s"),
             ("parameters", params or '<span class="ob-muted">defaults</span>'),
             ("findings", tally)]
    if h.server_version:
        facts.insert(2, ("server", f"PostgreSQL {esc(h.server_version)}"))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    return (f'{STYLE}<header class="ob-report"><h1>{esc(h.runbook)} '
            f'<span class="ob-status" style="background:{status_color}">{esc(h.status)}</span></h1>'
            f'<dl class="ob-facts">{dl}</dl><p><a href="{esc(index)}">all reports</a></p></header>'
            + failure_html(h.error))


def failure_html(error: dict[str, Any] | None) -> str:
    """The banner at the very top of a failed run: where it stopped, the cell's code and the error."""
    if not error:
        return ""
    from nbconvert.filters.ansi import strip_ansi  # noqa: PLC0415

    where = error.get("where") or "an unknown cell"
    trace = strip_ansi("\n".join(error.get("traceback") or []))
    source = f"<p>The cell:</p><pre>{esc(error['source'])}</pre>" if error.get("source") else ""
    jump = '<p><a href="#papermill-error-cell">jump to where it stopped</a></p>' if error.get("anchor") else ""
    return (f'<section class="ob-failure"><h2>The runbook failed: {esc(error.get("ename"))} in {esc(where)}</h2>'
            f'<p><b>{esc(error.get("evalue"))}</b></p>{source}'
            + (f"<p>Traceback:</p><pre>{esc(trace)}</pre>" if trace else "") + f"{jump}</section>")


def _prepared(nb, header: Header):
    """A copy without papermill's own top-of-notebook error note (our banner replaces it)."""
    import copy  # noqa: PLC0415

    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not (PAPERMILL_ERROR_TAG in c.get("metadata", {}).get("tags", [])
                                            and "An Exception was encountered" in c.get("source", ""))]
    nb.metadata["title"] = f"{header.runbook} on {header.target}, {header.started_at}"
    return nb


def _short_repr(value: Any, limit: int = 120) -> str:
    s = value if isinstance(value, str) else repr(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
