"""An executed notebook's cells as HTML: prose, outputs, code only when asked, the failing cell marked."""
from __future__ import annotations

import base64
from typing import Any

from ..core.display import STYLE
from .escape import strip_ansi, text_esc

HIDDEN_TAGS = {"parameters", "injected-parameters", "papermill-error-cell-tag"}
ANCHOR = "papermill-error-cell"  # the failure banner links here
# Richest first; text/plain is the fallback every output carries.
MIMES = ("text/html", "image/svg+xml", "image/png", "image/jpeg", "text/markdown", "text/plain")
_markdown = None


def esc(value: Any) -> str:
    return text_esc(value)


def markdown(text: str) -> str:
    """Markdown of the runbook's own prose (committed, trusted) to HTML; tables as in JupyterLab."""
    global _markdown
    if _markdown is None:
        import mistune  # noqa: PLC0415 - small, and what nbconvert itself renders markdown with

        _markdown = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])
    return _markdown(text)


def document_html(text: str) -> str:
    """Markdown opsbook wrote from untrusted text (a post-mortem document) to HTML: any raw HTML in it is escaped,
    never rendered (what the database said is in code spans already). Its headings become h5/h6: a document quoted
    in a report, not sections of the report (nor entries of its table of contents)."""
    import re  # noqa: PLC0415

    import mistune  # noqa: PLC0415

    html = mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])(text)
    return re.sub(r"<(/?)h([1-6])\b", lambda m: f"<{m[1]}h{5 if m[2] == '1' else 6}", html)


def cells_html(nb, *, with_code: bool = False, failed: bool = False) -> str:
    """Every visible cell, in order; the cell that failed carries the anchor and a one-line note, not the
    traceback (the banner at the top has it, folded)."""
    failing = failing_cell(nb) if failed else None
    parts = [_code_style()] if with_code else []
    for cell in nb.cells:
        if HIDDEN_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        if cell.cell_type == "markdown":
            parts.append(f'<div class="jp-Cell jp-MarkdownCell">{markdown(_text(cell.source))}</div>')
        elif cell.cell_type == "code":
            parts.append(_code_cell(cell, with_code, cell is failing))
    return "\n".join(parts)


def failing_cell(nb):
    """The code cell with an error output or papermill's exception mark, else the last one that started."""
    started = None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.get("metadata", {}).get("papermill", {})
        if meta.get("exception") or any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return cell
        if meta.get("start_time"):
            started = cell
    return started


def _code_cell(cell, with_code: bool, failing: bool) -> str:
    inner = f'<div class="ob-input">{_highlighted(_text(cell.source))}</div>' if with_code and cell.source else ""
    outputs = [o for o in cell.get("outputs", []) if not (failing and o.get("output_type") == "error")]
    inner += "".join(output_html(o) for o in outputs)
    if failing:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        why = f"{errors[0].get('ename')}: {errors[0].get('evalue')}" if errors else "the run ended in this cell"
        inner += (f'<div class="ob-stopped"><b>The run stopped here</b>: {esc(why)} '
                  '<a href="#">(the traceback is at the top)</a></div>')
    if not inner:
        return ""
    anchor = f' id="{ANCHOR}"' if failing else ""
    return f'<div class="jp-Cell jp-CodeCell"{anchor}>{inner}</div>'


def output_html(out: dict[str, Any]) -> str:
    """One output: streams and errors as escaped text, rich data by its richest type."""
    kind = out.get("output_type")
    if kind == "stream":
        cls = "ob-stream ob-stderr" if out.get("name") == "stderr" else "ob-stream"
        return f'<div class="ob-output"><pre class="{cls}">{esc(_text(out.get("text", "")))}</pre></div>'
    if kind == "error":
        trace = strip_ansi("\n".join(out.get("traceback") or [f"{out.get('ename')}: {out.get('evalue')}"]))
        return f'<div class="ob-output"><pre class="ob-stderr">{esc(trace)}</pre></div>'
    data = out.get("data", {})
    for mime in MIMES:
        if mime in data:
            return f'<div class="ob-output">{_rich(mime, data[mime])}</div>'
    return ""


def _rich(mime: str, value: Any) -> str:
    if mime == "text/html":
        # opsbook's outputs escape every database value when they are built (display.py); each repeats the
        # small stylesheet, which the page head already carries once
        return _text(value).replace(STYLE, "")
    if mime == "image/svg+xml":
        return _text(value)
    if mime in ("image/png", "image/jpeg"):
        b64 = "".join(_text(value).split())
        base64.b64decode(b64, validate=True)  # data, not markup: refuse anything that is not base64
        return f'<img alt="figure" src="data:{mime};base64,{b64}">'
    if mime == "text/markdown":
        return markdown(_text(value))
    return f"<pre>{esc(_text(value))}</pre>"


def _highlighted(source: str) -> str:
    from pygments import highlight  # noqa: PLC0415
    from pygments.formatters import HtmlFormatter  # noqa: PLC0415
    from pygments.lexers import PythonLexer  # noqa: PLC0415

    return highlight(source, PythonLexer(), HtmlFormatter(cssclass="highlight"))


def _code_style() -> str:
    from pygments.formatters import HtmlFormatter  # noqa: PLC0415

    return f"<style>{HtmlFormatter().get_style_defs('.highlight')}</style>"


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)
