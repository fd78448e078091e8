"""Figures for the cost analysis: the bill's composition, the levers, the months past and ahead."""
from __future__ import annotations

from ...core.display import plot_text
from . import height_for

SAVE, SPEND, TOTAL = "#067647", "#b42318", "#175cd3"


def bill_waterfall(bill):
    """Waterfall: each non-zero line adds or subtracts, ending at the month's total."""
    import plotly.graph_objects as go  # noqa: PLC0415

    lines = [line for line in bill.lines if line.amount_usd or line.kind in ("plan", "compute")]
    x = [_short(line.item) for line in lines] + ["Total"]
    y = [line.amount_usd for line in lines] + [bill.total_usd]
    fig = go.Figure(go.Waterfall(
        x=x, y=y, measure=["relative"] * len(lines) + ["total"],
        text=[f"{v:,.2f}" for v in y], textposition="outside",
        increasing={"marker": {"color": SPEND}}, decreasing={"marker": {"color": SAVE}},
        totals={"marker": {"color": TOTAL}}, connector={"line": {"color": "#98a2b3"}}))
    running, top, low = 0.0, 0.0, 0.0
    for v in y[:-1]:
        running += v
        top, low = max(top, running), min(low, running)
    fig.update_yaxes(range=[low * 1.15, max(top, 1.0) * 1.18])  # room for the labels above the bars
    fig.update_layout(title=f"What makes up the {bill.total_usd:,.2f} USD", yaxis_title="USD a month", height=380,
                      showlegend=False, margin={"t": 60, "b": 120})
    return fig


def _short(label: str, width: int = 16) -> str:
    """Axis labels: drop the detail in parentheses, break long ones over lines."""
    words, lines, cur = label.split(" (")[0].split(), [], ""
    for w in words:
        if cur and len(cur) + len(w) + 1 > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return "<br>".join(lines + [cur])


def levers_bar(whatifs):
    """Horizontal bars: what each lever that lowers the bill (or leaves it unchanged) would save a month, biggest
    saving at the top; grey when the usage would not fit. Levers that raise the bill stay in the table above.
    None when no lever lowers it."""
    import plotly.graph_objects as go  # noqa: PLC0415

    lower = sorted((w for w in whatifs if w.delta_usd <= 0), key=lambda w: (w.delta_usd, not w.fits))
    if not lower:
        return None
    raise_n = len(whatifs) - len(lower)
    ws = list(reversed(lower))  # plotly draws the first category at the bottom: most saved at the top
    labels = [plot_text(_short(w.title, 34).replace("<br>", " ")) for w in ws]
    deltas = [w.delta_usd for w in ws]
    fig = go.Figure(go.Bar(
        x=deltas, y=labels, orientation="h", cliponaxis=False, hoverinfo="skip", showlegend=False,
        marker={"color": [SAVE if w.fits and w.delta_usd < 0 else "#98a2b3" for w in ws]}))
    # the amounts beside each bar's end, on its own text trace: never over the bar or the category labels
    fig.add_scatter(x=deltas, y=labels, mode="text", showlegend=False, hoverinfo="skip", textposition="middle left",
                    text=[("no change" if not w.delta_usd else f"saves {-w.delta_usd:,.2f} USD")
                          + ("" if w.fits else " (usage does not fit)") for w in ws])
    low = min(deltas)
    pad = max(abs(low) * 0.9, 1.0)
    fig.update_xaxes(range=[low - pad, pad * 0.15], zeroline=True, zerolinecolor="#667085")
    title = "What would lower the bill: each lever's monthly saving"
    if raise_n:
        title += f"<br><sup>{raise_n} more levers raise it (see the table above)</sup>"
    fig.update_layout(title=title, xaxis_title="USD a month (to the left saves money)", yaxis_title="",
                      height=height_for(len(ws), per_row=34, chrome=160), margin={"t": 80})
    return fig


def months_bar(months):
    """Stacked bars per month (plan, compute, usage, add-ons); projected months drawn lighter."""
    import plotly.graph_objects as go  # noqa: PLC0415

    colors = {"plan": "#175cd3", "compute": "#6941c6", "usage": "#b54708", "add-ons": "#067647"}
    fig = go.Figure()
    for group, color in colors.items():
        col = f"{group}_usd"
        fig.add_bar(x=months["month"], y=months[col], name=group, marker={
            "color": color, "opacity": 1.0, "pattern": {"shape": ["" if k == "past" else "/" for k in months["kind"]]}})
    fig.add_scatter(x=months["month"], y=months["total_usd"], mode="text", showlegend=False,
                    text=[f"{v:,.2f}" for v in months["total_usd"]], textposition="top center")
    fig.update_layout(barmode="relative", title="Monthly bill: past months and the next three (hatched: projected)",
                      yaxis_title="USD", height=380)
    return fig
