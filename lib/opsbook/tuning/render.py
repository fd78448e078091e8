"""The statements looked at, as an engineer reads them: the text first, what it costs, then where its plan spends
(the costliest nodes first, sequential scans in bold), on the shadow and on the target. Everything from the
database is escaped."""
from __future__ import annotations

import math

from ..core.display import EMPTY, esc, human_count, human_ms, human_pct

MAX_TEXT = 900  # characters of a statement shown; the full text is in the run's notebook
STYLE = ("<style>.ob-tuning{width:100%;table-layout:fixed}.ob-tuning th.ob-n{width:2.5em}.ob-tuning th.ob-stmt"
         "{width:42%}.ob-tuning .ob-code{overflow-wrap:anywhere;margin:.2em 0}.ob-tuning .ob-muted{font-size:.85em}"
         "</style>")


def statements_html(df, max_rows: int = 25) -> str:
    """One row per statement: its text and counters, and its plan (or why it was not planned)."""
    if df is None or not len(df):
        return f"<p>{esc(EMPTY)}</p>"
    rows = []
    for n, r in enumerate(df.head(max_rows).to_dict("records"), 1):
        rows.append(f'<tr><td class="num">{n}</td><td>{_statement(r)}</td><td>{_plan(r)}</td></tr>')
    more = (f'<p class="ob-muted">{len(df) - max_rows} more in the run\'s notebook.</p>'
            if len(df) > max_rows else "")
    return (STYLE + '<table class="ob-table ob-tuning"><thead><tr><th class="ob-n">#</th><th class="ob-stmt">statement</th>'
            "<th>plan: where its cost sits, costliest first</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>" + more)


def _statement(r: dict) -> str:
    text = str(r.get("query") or "")
    cut = len(text) > MAX_TEXT
    source = "from the server log (its logged executions only)" if r.get("source") == "log" else \
        f"queryid {esc(r.get('queryid'))}"
    facts = [source, f"{human_count(r['calls'])} calls",
             f"total {human_ms(r['total_exec_ms'])}"]
    if _number(r.get("pct_total_time")):
        facts[-1] += f" ({human_pct(r['pct_total_time'])} of all)"
    facts.append(f"mean {human_ms(r['mean_exec_ms'])}")
    if _number(r.get("rows")):
        facts.append(f"{human_count(r['rows'])} rows")
    if _number(r.get("shared_blks_read")):
        facts.append(f"{human_count(r['shared_blks_read'])} blocks read from disk")
    return (f'<div class="ob-code">{esc(text[:MAX_TEXT])}{"…" if cut else ""}</div>'
            f'<div class="ob-muted">{" · ".join(facts)}</div>')


def _plan(r: dict) -> str:
    status = str(r.get("status") or "")
    if status:
        return f"<b>not planned</b>: {esc(status.removeprefix('not planned: '))}"
    parts = []
    if _number(r.get("shadow_cost")):
        parts.append(f"<div>on the shadow: cost {r['shadow_cost']:,.0f}</div>")
    plan = str(r.get("plan") or "")
    if plan:
        lines = [f"<b>{esc(x)}</b>" if x.startswith("Seq Scan") else esc(x) for x in plan.splitlines()]
        parts.append('<div class="ob-code">' + "\n".join(lines) + "</div>")
    target = str(r.get("target_plan") or "")
    if target:
        parts.append(f'<div class="ob-muted">on the target:</div><div class="ob-code ob-muted">{esc(target)}</div>')
    return "".join(parts) or '<span class="ob-muted">no plan</span>'


def _number(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
