"""What a notebook cell shows: findings tables, data tables formatted by their units, escaped text."""
from __future__ import annotations

import datetime as _dt
import html
import math
from typing import Any, Iterable

from .findings import Finding, Severity, by_severity, counts, worst

# one meaning per colour in every report, chart and index: severity (charts/__init__.SEVERITY_COLORS is this)
COLORS = {"critical": "#b42318", "warning": "#b54708", "info": "#175cd3", "ok": "#067647"}
# The severity colours as text on a dark theme's background (a verdict's priority line): the same hues, lighter.
DARK_TEXT = {"critical": "#f97066", "warning": "#fdb022", "info": "#84adff", "ok": "#47cd89"}
# Theme-aware: JupyterLab's own CSS variables where they exist (light and dark themes), a light page elsewhere.
STYLE = """<style>
.ob-badge{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:.85em;font-weight:600}
.ob-table{border-collapse:collapse;font-size:.9em;margin:.4em 0;color:var(--jp-content-font-color1,inherit)}
.ob-table th,.ob-table td{border-bottom:1px solid var(--jp-border-color2,#ddd);padding:3px 8px;text-align:left;
vertical-align:top}
.ob-table th{background:var(--jp-layout-color2,#f4f4f5);color:var(--jp-ui-font-color1,#1f2328)}
.ob-table td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.jp-RenderedHTMLCommon table.ob-table td,.jp-RenderedHTMLCommon table.ob-table th{text-align:left}
.jp-RenderedHTMLCommon table.ob-table td.num{text-align:right}
.jp-RenderedHTMLCommon table.ob-table th{background:var(--jp-layout-color2,#f4f4f5);
color:var(--jp-ui-font-color1,#1f2328)}
.ob-verdict{border-left:6px solid;padding:.5em 1em;margin:.5em 0;background:var(--jp-layout-color1,#fafafa);
color:var(--jp-ui-font-color1,#1f2328)}
.ob-muted{color:var(--jp-content-font-color2,#667085)}
.ob-table .ob-muted{color:var(--jp-ui-font-color1,#475467)}
.ob-code{font-family:monospace;white-space:pre-wrap;font-size:.85em}
@media print{.ob-verdict,.ob-table tr,.js-plotly-plot{break-inside:avoid}}
""" + "".join(f'[data-jp-theme-light="false"] .ob-verdict b[style*="color:{COLORS[s]}"]{{color:{c}!important}}'
              for s, c in DARK_TEXT.items()) + "\n</style>"
EMPTY = "Nothing to show: the check returned no rows."


def esc(value: Any) -> str:
    """Everything that came from the database is data: escape it for HTML (`$` is kept from LaTeX by show_html)."""
    return html.escape("" if value is None else str(value), quote=True)


def plot_text(value: Any) -> str:
    """A label for plotly: plotly.js reads `<`, `>` and `&` as its own markup, so escape those and only those
    (escaping quotes too shows `&quot;` in the chart: it is not HTML and does not decode them)."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def badge(severity: Severity | str) -> str:
    s = Severity.parse(severity).value
    return f'<span class="ob-badge" style="background:{COLORS[s]}">{s}</span>'


# ------------------------------------------------------------------ numbers for people, by unit
def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT, pd.NA
    except (TypeError, ValueError):
        return False


def human_count(n: Any) -> str:
    """A count: an integer with thousands separators (exact for bigint values: never through float)."""
    if isinstance(n, float):
        if not math.isfinite(n):
            return str(n)
        return f"{round(n):,}"
    return f"{int(n):,}"


def human_number(x: Any) -> str:
    """A plain quantity: integral values as counts, others to two decimals at most (1,234 / 12.5 / 0.25)."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int) or float(x).is_integer():
        return human_count(x)
    x = float(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    for digits in (2, 3, 4):
        text = f"{x:,.{digits}f}".rstrip("0").rstrip(".")
        if text not in ("0", "-0"):
            return text
    return f"{x:.2g}"


def human_bytes(n: float) -> str:
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} PB"  # pragma: no cover


def human_seconds(s: float) -> str:
    """A duration in s, min, h or d; never "-0.0 s" (a clock skew of microseconds is zero)."""
    s = float(s)
    if round(s, 1) == 0:
        return "0 s"
    if abs(s) < 60:
        return f"{s:,.1f} s"
    if abs(s) < 3600:
        return f"{s / 60:,.1f} min"
    if abs(s) < 86400 * 2:
        return f"{s / 3600:,.1f} h"
    return f"{s / 86400:,.1f} d"


def human_ms(ms: float) -> str:
    ms = float(ms)
    return f"{ms:,.1f} ms" if abs(ms) < 1000 else human_seconds(ms / 1000)


def human_pct(p: float) -> str:
    """A percentage with the digits that keep it honest: 99.98% never reads 100.0%, 0.04% never 0.0%."""
    p = float(p)
    if p == 0:
        return "0%"
    for digits in (1, 2, 3):
        shown = round(p, digits)
        if not ((shown == 100 and p != 100) or shown == 0):
            break
    else:
        return "<0.001%" if 0 < p < 1 else f"{p:,.3f}%"
    return f"{p:,.{digits}f}%"


def human_money(x: float, currency: str = "USD", *, signed: bool = False) -> str:
    return f"{float(x):{'+' if signed else ''},.2f} {currency}"


def human_days(d: float) -> str:
    d = float(d)
    if abs(d) < 1:
        return f"{d:.1f} days" if round(d, 1) else "0 days"
    return f"{d:,.0f} days"


def human_when(t: Any) -> str:
    """A timestamp to the second, "UTC" when it is."""
    if isinstance(t, _dt.datetime):
        t = t.replace(microsecond=0)
        if t.utcoffset() == _dt.timedelta(0):
            return t.replace(tzinfo=None).isoformat(sep=" ") + " UTC"
        return t.isoformat(sep=" ")
    return str(t)


ID_COLUMNS = ("pid", "oid", "port", "year")
UNIT_VALUE_COLUMNS = ("value", "limit_value", "used", "quota", "included", "over", "quantity")
UNITS = {"bytes": human_bytes, "b": human_bytes, "s": human_seconds, "seconds": human_seconds, "ms": human_ms,
         "%": human_pct, "pct": human_pct, "percent": human_pct, "usd": human_money, "days": human_days}


def with_unit(value: Any, unit: str | None) -> str:
    """A value in the unit a sibling `unit` column names: 7.6 GB, 100,000 users, 60 connections."""
    if _missing(value):
        return ""
    fn = UNITS.get(str(unit or "").strip().lower())
    if fn is not None:
        return fn(float(value))
    return f"{human_number(value)} {unit}".strip() if unit else human_number(value)


def human_value(column: str, value: Any, unit: str | None = None) -> str:
    """Format a value for people, by the unit its column name carries (size_bytes, duration_s, pct_used...),
    or by the row's `unit` column for the value columns that have one."""
    if _missing(value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, _dt.datetime):
        return human_when(value)
    if not _is_number(value):
        return str(value)
    c = column.lower()
    try:
        if unit is not None and c in UNIT_VALUE_COLUMNS:
            return with_unit(value, unit)
        if c in ID_COLUMNS or c.endswith("_pid") or c.endswith("_id") or c.endswith("_oid"):
            return str(int(value))
        if c.endswith("_bytes") or c in ("bytes", "size"):
            return human_bytes(value)
        if c.endswith("_ms"):
            return human_ms(value)
        if c.endswith("_s") or c.endswith("_seconds"):
            return human_seconds(value)
        if c.startswith("pct") or c.endswith("_pct") or c.endswith("_percent"):
            return human_pct(value)
        if c.endswith("_usd") or c.startswith("usd_"):
            return human_money(value, signed=c.startswith("delta"))
        if c.endswith("_h") or c.endswith("_hours"):
            return human_seconds(float(value) * 3600)
        if c.startswith("days_") or c.endswith("_days") or c == "days":
            return human_days(value)
        if c.endswith("_ratio"):
            return f"{float(value):.4f}"
        if c.endswith("_gb"):
            return f"{human_number(value)} GB"
    except (TypeError, ValueError, OverflowError):
        return str(value)
    return human_number(value)


def _is_number(value: Any) -> bool:
    import numbers  # noqa: PLC0415

    return isinstance(value, numbers.Number) and not isinstance(value, bool)


# ------------------------------------------------------------------ tables and findings
def table_html(df, max_rows: int = 50, columns: list[str] | None = None, *, empty: str = EMPTY) -> str:
    """An escaped HTML table; numbers formatted by unit; long tables cut with a note.

    A `unit` column formats the value columns beside it (limit_value 8160437862 with unit bytes reads 7.6 GB) and
    is then not shown; a column empty in every shown row is left out and named in one line; no rows: one sentence.
    """
    if df is None or len(df) == 0:
        return f'<p class="ob-muted">{esc(empty)}</p>'
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    part = df.head(max_rows)
    records = part.to_dict("records")
    has_unit = "unit" in df.columns and any(c in UNIT_VALUE_COLUMNS for c in cols)
    if has_unit:
        cols = [c for c in cols if c != "unit"]
    blank = [c for c in cols if all(_missing(r.get(c)) or r.get(c) == "" for r in records)]
    shown = [c for c in cols if c not in blank] or cols
    head = "".join(f"<th>{esc(c)}</th>" for c in shown)
    rows = []
    for rec in records:
        unit = rec.get("unit") if has_unit else None
        cells = []
        for c in shown:
            v = rec.get(c)
            cls = ' class="num"' if _is_number(v) and not _missing(v) else ""
            cells.append(f"<td{cls}>{esc(human_value(c, v, unit))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    notes = []
    if len(df) > max_rows:
        notes.append(f"{len(df) - max_rows:,} more rows not shown.")
    if blank and len(shown) < len(cols):
        notes.append(f"No value in any row for {', '.join(blank)}.")
    more = "".join(f'<p class="ob-muted">{esc(n)}</p>' for n in notes)
    return f'<table class="ob-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{more}'


def metrics_html(metrics: dict[str, Any]) -> str:
    """The numbers a run recorded (name, value formatted by the unit in its name), or one sentence."""
    import pandas as pd  # noqa: PLC0415

    if not metrics:
        return '<p class="ob-muted">No numbers were recorded by this run (the database could not be reached).</p>'
    rows = [{"metric": k, "value": human_value(_metric_column(k), v) if not _missing(v) else
             "not within the forecast" if k.startswith("days_") else "not measured"} for k, v in metrics.items()]
    return table_html(pd.DataFrame(rows))


def _metric_column(name: str) -> str:
    """days_until_disk_full is in days; connections_max is a count: name the unit the way columns do."""
    for unit in ("_bytes", "_usd", "_pct", "_s", "_ms", "_gb"):
        if name.endswith(unit):
            return name
    return "days" if name.startswith("days_") else name


def show_metrics(metrics: dict[str, Any]) -> None:
    show_html(metrics_html(metrics))


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


def summary_html(findings: list[Finding], headline: str = "", *, measured_at: float | None = None) -> str:
    """Worst severity, counts by severity, and an optional headline, as a coloured box; with `measured_at` (epoch
    seconds) the time the findings were measured, so a reopened notebook does not pass an old verdict as new."""
    w = worst(findings).value
    c = counts(findings)
    tally = " · ".join(f"{badge(s)} {n}" for s, n in c.items() if n)
    return (f'{STYLE}<div class="ob-verdict" style="border-color:{COLORS[w]}">'
            f'<div style="font-size:1.2em"><b>{esc(headline) if headline else "Worst finding: " + w}</b></div>'
            f"<div>{tally or 'no findings'}</div>{measured_html(measured_at)}</div>")


def measured_html(measured_at: float | None) -> str:
    if measured_at is None:
        return ""
    when = _dt.datetime.fromtimestamp(measured_at, tz=_dt.timezone.utc)
    return f'<div class="ob-muted ob-measured">measured at {esc(human_when(when))}</div>'


def with_measured_at(box: str, measured_at: float | None) -> str:
    """A verdict box (one outer element) with its "measured at" line as the box's last line."""
    line = measured_html(measured_at)
    cut = box.rfind("</")
    return box[:cut] + line + box[cut:] if line and cut >= 0 else box + line


# MathJax, which JupyterLab runs over every HTML output, skips elements of these classes (MathJax 3's default,
# and MathJax 2's of the classic notebook): `status = $1 ORDER BY created_at LIMIT $2` stays text, never LaTeX.
# Escaping `$` as &#36; would not do it: MathJax reads the page's text, where &#36; is `$` again.
NO_MATH = "mathjax_ignore tex2jax_ignore"


def show_html(markup: str) -> None:
    """Display trusted markup (built here, with every database value already escaped), never typeset as math."""
    from IPython.display import HTML, display  # noqa: PLC0415

    display(HTML(f'<div class="{NO_MATH}">{STYLE}{markup}</div>'))


def show(obj: Any, **kw: Any) -> None:
    """Show a DataFrame, a Finding list or a string, escaped."""
    if isinstance(obj, list) and all(isinstance(f, Finding) for f in obj):
        show_html(findings_html(obj, **kw))
    elif hasattr(obj, "to_dict") and hasattr(obj, "columns"):
        show_html(table_html(obj, **kw))
    else:
        show_html(f'<p class="ob-text">{esc(obj)}</p>')
