"""What a notebook cell shows: findings tables, data tables formatted by their units, escaped text."""
from __future__ import annotations

import html
from typing import Any, Iterable

from .findings import Finding, Severity, by_severity, counts, worst

COLORS = {"critical": "#b42318", "warning": "#b54708", "info": "#175cd3", "ok": "#067647"}
STYLE = """<style>
.ob-badge{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:.85em;font-weight:600}
.ob-table{border-collapse:collapse;font-size:.9em;margin:.4em 0}
.ob-table th,.ob-table td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
.ob-table th{background:#f4f4f5}
.ob-table td.num{text-align:right;font-variant-numeric:tabular-nums}
.jp-RenderedHTMLCommon table.ob-table td,.jp-RenderedHTMLCommon table.ob-table th{text-align:left}
.jp-RenderedHTMLCommon table.ob-table td.num{text-align:right}
.ob-verdict{border-left:6px solid;padding:.5em 1em;margin:.5em 0;background:#fafafa}
.ob-muted{color:#667085}
.ob-code{font-family:monospace;white-space:pre-wrap;font-size:.85em}
</style>"""


def esc(value: Any) -> str:
    """Everything that came from the database is data: escape it for HTML."""
    return html.escape("" if value is None else str(value), quote=True)


def badge(severity: Severity | str) -> str:
    s = Severity.parse(severity).value
    return f'<span class="ob-badge" style="background:{COLORS[s]}">{s}</span>'


def human_value(column: str, value: Any) -> str:
    """Format a value for people, by the unit its column name carries (size_bytes, duration_s, pct_used...)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    try:
        if column.endswith("_bytes"):
            return human_bytes(float(value))
        if column.endswith("_s") or column.endswith("_seconds"):
            return human_seconds(float(value))
        if column.endswith("_ms"):
            return f"{float(value):,.1f} ms"
        if column.startswith("pct") or column.endswith("_pct"):
            return f"{float(value):.1f}%"
        if column.endswith("_ratio"):
            return f"{float(value):.4f}"
    except (TypeError, ValueError):
        pass
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} PB"  # pragma: no cover


def human_seconds(s: float) -> str:
    if s < 60:
        return f"{s:,.1f} s"
    if s < 3600:
        return f"{s / 60:,.1f} min"
    if s < 86400 * 2:
        return f"{s / 3600:,.1f} h"
    return f"{s / 86400:,.1f} d"


def table_html(df, max_rows: int = 50, columns: list[str] | None = None) -> str:
    """An escaped HTML table; numbers formatted by unit; long tables cut with a note."""
    if df is None or len(df) == 0:
        return '<p class="ob-muted">(no rows)</p>'
    cols = columns or list(df.columns)
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    rows = []
    for rec in df[cols].head(max_rows).to_dict("records"):
        cells = []
        for c in cols:
            v = rec[c]
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(f'<td class="{"num" if num else ""}">{esc(human_value(c, v))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="ob-muted">{len(df) - max_rows} more rows not shown</p>' if len(df) > max_rows else ""
    return f'<table class="ob-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{more}'


def findings_html(findings: Iterable[Finding], *, show_ok: bool = True) -> str:
    fs = [f for f in by_severity(findings) if show_ok or f.severity is not Severity.OK]
    if not fs:
        return '<p class="ob-muted">No findings.</p>'
    rows = []
    for f in fs:
        detail = esc(f.detail)
        if f.objects:
            detail += f'<br><span class="ob-muted">objects: {esc(", ".join(map(str, f.objects[:10])))}' + \
                      (f" and {len(f.objects) - 10} more" if len(f.objects) > 10 else "") + "</span>"
        fix = f'<div class="ob-code">{esc(f.remediation)}</div>' if f.remediation else ""
        rows.append(f"<tr><td>{badge(f.severity)}</td><td><code>{esc(f.check)}</code></td>"
                    f"<td><b>{esc(f.title)}</b><br>{detail}</td><td>{fix}</td></tr>")
    return ('<table class="ob-table"><thead><tr><th>severity</th><th>check</th><th>finding</th>'
            f'<th>what to do</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def summary_html(findings: list[Finding], headline: str = "") -> str:
    """Worst severity, counts by severity, and an optional headline, as a coloured box."""
    w = worst(findings).value
    c = counts(findings)
    tally = " · ".join(f"{badge(s)} {n}" for s, n in c.items() if n)
    return (f'{STYLE}<div class="ob-verdict" style="border-color:{COLORS[w]}">'
            f'<div style="font-size:1.2em"><b>{esc(headline) if headline else "Worst finding: " + w}</b></div>'
            f"<div>{tally or 'no findings'}</div></div>")


def show_html(markup: str) -> None:
    """Display trusted markup (built here, with every database value already escaped)."""
    from IPython.display import HTML, display  # noqa: PLC0415

    display(HTML(STYLE + markup))


def show(obj: Any, **kw: Any) -> None:
    """Show a DataFrame, a Finding list or a string, escaped."""
    if isinstance(obj, list) and all(isinstance(f, Finding) for f in obj):
        show_html(findings_html(obj, **kw))
    elif hasattr(obj, "to_dict") and hasattr(obj, "columns"):
        show_html(table_html(obj, **kw))
    else:
        show_html(f"<p>{esc(obj)}</p>")
