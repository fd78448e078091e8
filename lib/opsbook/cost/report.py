"""The cost report's HTML blocks, written for a manager: the bill, the levers, where each number comes from."""
from __future__ import annotations

import re

from ..core.display import esc, human_bytes
from .bill import Bill, num
from .usage import GB, SIZE_ITEMS

TABLE = '<table class="ob-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """Rows of already-escaped cells."""
    h = "".join(f'<th style="text-align:{"right" if i in numeric else "left"}">{esc(c)}</th>'
                for i, c in enumerate(head))
    # inline alignment: JupyterLab's exported CSS right-aligns every cell with a more specific selector
    b = "".join("<tr>" + "".join(f'<td class="num" style="text-align:right">{c}</td>' if i in numeric else
                                 f'<td style="text-align:left">{c}</td>' for i, c in enumerate(r)) + "</tr>"
                for r in rows)
    return TABLE.format(head=h, body=b)


def usd(x: float | None) -> str:
    return "" if x is None else f"{x:,.2f}"


def headline_html(a) -> str:
    s, bill = a.settings, a.bill
    plan = a.prices.plan(s.plan).get("label", s.plan)
    size = a.prices.size(s.compute).get("label", s.compute)
    cap = f"spend cap {'on' if s.spend_cap else 'off'} ({s.sources.get('spend_cap', '')})"
    extra = ""
    if bill.uncapped_usd != bill.total_usd:
        extra = (f"<div>Without the spend cap it would be <b>{usd(bill.uncapped_usd)} USD</b>; with it, the usage "
                 "past quota is restricted instead of billed.</div>")
    missing = unmeasured(bill)
    if missing:
        extra += (f"<div><b>Not measured, counted as 0:</b> {esc(', '.join(missing))}. SQL cannot see them: pass "
                  "them as parameters (e.g. <code>egress_gb</code>) or a dashboard usage CSV "
                  "(<code>usage_csv</code>) for a bill that includes them.</div>")
    return (f'<div class="ob-verdict" style="border-color:#175cd3"><div style="font-size:1.3em">Estimated monthly '
            f"bill: <b>{usd(bill.total_usd)} USD</b>{' (measured lines only)' if missing else ''}</div>"
            f"<div>{esc(plan)} plan, {esc(size)} compute, {esc(cap)}; "
            f"add-ons: {esc(s.addons_text())}.</div>{extra}<div class=\"ob-muted\">Prices: {esc(a.prices.title)}. "
            "Details and sources at the end of the report.</div></div>")


def unmeasured(bill: Bill) -> list[str]:
    """The usage lines of the bill with no measured quantity (priced as 0): what the headline does not include."""
    return [line.item.split(" (")[0] for line in bill.lines if line.kind == "usage" and line.quantity is None]


def bill_html(bill: Bill) -> str:
    """The bill, line by line: item, quantity, amount, and the sentence that explains it; total last."""
    rows = []
    for line in bill.lines:
        qty = "" if line.quantity is None or line.kind in ("plan", "cap", "credit") else num(line.quantity, line.unit)
        if line.kind == "usage" and line.quantity is None:
            qty = "not measured"
        rows.append([esc(line.item), esc(qty), esc(usd(line.amount_usd)), esc(line.note)])
    rows.append(["<b>Total for the month</b>", "", f"<b>{esc(usd(bill.total_usd))}</b>",
                 esc(f"Sum of the lines, each rounded to the cent; hourly items at {num(bill.hours)} hours a month.")])
    return _table(["item", "quantity", "USD", "what it is"], rows, numeric={2})


def whatifs_html(whatifs) -> str:
    rows = []
    for w in whatifs:
        change = "no change" if w.delta_usd == 0 else f"{w.delta_usd:+,.2f}"
        if not w.fits:
            change += " (does not fit)"
        rows.append([esc(w.title), esc(change), esc(usd(w.new_total_usd)), esc(w.detail), esc(w.caveat)])
    if not rows:
        return '<p class="ob-muted">No levers to weigh.</p>'
    return _table(["if we…", "USD a month", "new monthly total USD", "why", "mind that"], rows, numeric={1, 2})


def settings_html(a) -> str:
    s = a.settings
    rows = []
    for key, label in (("plan", "plan"), ("compute", "compute size"), ("spend_cap", "spend cap"),
                       ("pitr_days", "PITR days"), ("ipv4", "IPv4 add-on"), ("custom_domain", "custom domain"),
                       ("read_replicas", "read replicas"), ("log_drains", "log drains"), ("disk_gb", "disk size GB")):
        value = getattr(s, key)
        shown = "estimated" if value is None else ("on" if value else "off") if isinstance(value, bool) else value
        rows.append([esc(label), esc(shown), esc(s.sources.get(key, ""))])
    return _table(["setting", "value", "from"], rows)


def usage_html(a) -> str:
    """Every usage number and where it came from: the database, a parameter, a usage CSV, or nowhere."""
    rows = []
    items = a.prices.items()
    for key in ("database", *items):
        q = a.usage.quantity(key)
        if key in items and items[key].get("optional") and q.value is None:
            continue
        unit = items.get(key, {}).get("unit", "GB")
        label = items.get(key, {}).get("label", "Database size (all databases)")
        value = "not measured" if q.value is None else num(q.value, unit)
        rows.append([esc(label), esc(value), esc(q.source), esc(q.detail)])
    notes = "".join(f'<p class="ob-muted">{esc(n)}</p>' for n in a.notes)
    return _table(["usage", "this month", "from", "how"], rows) + notes


def sources_html(a) -> str:
    """The price list used, its date, the overrides, and the sources each line cites."""
    cited = set()
    for line in a.bill.lines:
        cited.update(re.findall(r"\b[A-Z][A-Z0-9]*\d[A-Z0-9]*\b|\bRR\b|\bAWS3P\b", line.price_source))
    known = a.prices.sources()
    rows = [[esc(k), esc(v)] for k, v in known.items() if k in cited or k == "AWS3P"]
    intro = (f"<p>Price list: <b>{esc(a.prices.describe())}</b>. Each figure carries its own date (as_of) in the "
             "bill's source column of the sidecar and in the price file; override any figure in opsbook.toml "
             "<code>[pricing]</code> or point <code>[pricing] file</code> at your own list.</p>"
             f"<p>Conventions: hourly items × {num(a.bill.hours)} hours (the average month; a 31-day month has "
             "744); each line rounded to the cent, half up; overage prorated per unit; usage over the last 30 days "
             "(monthly active users) or as given.</p>")
    lines = _table(["bill line", "price source, as of"],
                   [[esc(line.item), esc(line.price_source)] for line in a.bill.lines if line.price_source])
    return intro + lines + _table(["source", "what it is"], rows)


def rds_html(df) -> str:
    rows = [[esc(r["what"]), esc(usd(r["supabase_usd"])), esc("not priced" if r["rds_usd"] is None or
                                                              r["rds_usd"] != r["rds_usd"] else usd(r["rds_usd"])),
             esc(r["note"])] for r in df.to_dict("records")]
    return (f'<p><b>Third-party prices.</b> {esc(df.attrs.get("label", ""))}: {esc(df.attrs.get("caveat", ""))}</p>'
            + _table(["what", "Supabase USD", "AWS RDS USD (third-party)", "note"], rows, numeric={1, 2}))


def archive_html(df, days: int) -> str:
    if df is None or not len(df):
        return '<p class="ob-muted">No table with a creation-time column (created_at, ...) to archive from.</p>'
    rows = [[esc(f"{r['schema']}.{r['table_name']}"), esc(r["column_name"]), esc(human_bytes(r["total_bytes"])),
             esc(f"{r['older_pct']:.1f}%"), esc(human_bytes(r["older_bytes"])), esc(r["method"])]
            for r in df.head(15).to_dict("records")]
    more = f'<p class="ob-muted">{len(df) - 15} more tables not shown.</p>' if len(df) > 15 else ""
    return _table(["table", "by column", "size with indexes", f"older than {days} days", "bytes to archive",
                   "estimated from"], rows, numeric={2, 3, 4}) + more


def trend_html(trend) -> str:
    df = trend.months
    rows = [[esc(r["month"]), esc(r["kind"]), esc(usd(r["total_usd"])), esc(num(r["database_gb"], "GB")),
             esc(num(r["disk_gb"], "GB")), esc(num(r["storage_gb"], "GB")), esc(num(r["mau"]))]
            for r in df.to_dict("records")]
    return _table(["month", "", "USD", "databases", "disk", "file storage", "monthly active users"], rows,
                  numeric={2, 3, 4, 5, 6}) + f'<p class="ob-muted">{esc(trend.note)}</p>'


# ------------------------------------------------------------------ what the notebook cells call
UNAVAILABLE = '<p class="ob-muted">Not available: the database could not be reached (see the findings).</p>'


def _show(markup: str) -> None:
    from ..core.display import show_html  # noqa: PLC0415

    show_html(markup)


def unpriced_html(a) -> str:
    """No bill: why, what to configure, and the usage that was measured (each number with its source)."""
    from .unpriced import HOW_TO_PRICE  # noqa: PLC0415

    rows = [[esc(q.item.replace("_", " ")), esc("not measured" if q.value is None else human_bytes(q.value * GB)
                                                if q.item in SIZE_ITEMS else num(q.value)),
             esc(q.source), esc(q.detail)] for q in a.usage.quantities.values()]
    if "egress" not in a.usage.quantities:
        rows.append([esc("egress"), esc("not known"), "", esc("SQL cannot see it; pass -p egress_gb=...")])
    rows.append([esc("connections"), esc(num(a.peak)), "database",
                 esc(f"{a.peak_source}; max_connections {a.max_connections}")])
    notes = "".join(f'<p class="ob-muted">{esc(n)}</p>' for n in a.notes)
    return (f'<div class="ob-verdict" style="border-color:#175cd3"><div style="font-size:1.3em"><b>No bill '
            f"computed</b>: {esc(a.unpriced)}.</div><div>{esc(HOW_TO_PRICE[0].upper() + HOW_TO_PRICE[1:])}.</div>"
            "</div>" + _table(["usage", "this month", "from", "how"], rows) + notes)


def show_bill(a) -> None:
    if a is not None and not a:
        return _show(unpriced_html(a))
    _show(UNAVAILABLE if a is None else headline_html(a) + bill_html(a.bill))


def show_levers(a) -> None:
    if a is None:
        return _show(UNAVAILABLE)
    if not a:
        return _show(f'<p class="ob-muted">No levers priced: {esc(a.unpriced)}.</p>')
    _show("<p>Each lever is priced alone against this month's bill; they are alternatives and their savings do "
          "not simply add up.</p>" + whatifs_html(a.whatifs))


def show_space(a) -> None:
    """Where the archive and index levers get their bytes."""
    if a is None:
        return _show(UNAVAILABLE)
    if not a:
        return _show(f'<p class="ob-muted">Not measured: no bill to lower ({esc(a.unpriced)}).</p>')
    idx = a.indexes
    rows = [] if idx is None else [[esc(f"{r['schema']}.{r['index_name']}"), esc(r["table_name"]),
                                    esc(human_bytes(r["size_bytes"])), esc(r["definition"])]
                                   for r in idx.head(15).to_dict("records")]
    since = ""
    if idx is not None and len(idx) and idx["stats_reset"].notna().any():
        since = f" (statistics reset {esc(idx['stats_reset'].iloc[0])})"
    indexes = _table(["index", "table", "size", "definition"], rows) if rows else \
        '<p class="ob-muted">No unused index outside constraints.</p>'
    _show(f"<h4>Rows older than {a.archive_days} days</h4>" + archive_html(a.archive, a.archive_days)
          + f"<h4>Indexes never scanned{since}</h4>" + indexes)


def show_trend(a) -> bool:
    """The months table (True) or why there is none (False)."""
    if a is None:
        _show(UNAVAILABLE)
        return False
    if a.trend is None or a.trend.months is None or not len(a.trend.months):
        _show(f'<p class="ob-muted">{esc(a.trend_note)}</p>')
        return False
    _show(trend_html(a.trend))
    return True


def show_rds(a) -> None:
    if a is not None and not a:
        return _show(f'<p class="ob-muted">Not compared: {esc(a.unpriced)}.</p>')
    _show(UNAVAILABLE if a is None else rds_html(a.rds))


def show_provenance(a) -> None:
    if a is None:
        return _show(UNAVAILABLE)
    if not a:
        return _show("<h4>What was used</h4>" + unpriced_html(a))
    _show("<h4>What is bought</h4>" + settings_html(a) + "<h4>What was used</h4>" + usage_html(a)
          + f"<p>Connection peak for the compute fit: {esc(num(a.peak))} ({esc(a.peak_source)}).</p>")


def show_sources(a) -> None:
    if a is not None and not a:
        return _show(f'<p class="ob-muted">No price used: {esc(a.unpriced)}.</p>')
    _show(UNAVAILABLE if a is None else sources_html(a))
