"""The monthly health report's figure: the database's growth and the bill side by side, the report month marked.

Side by side in one figure, so that both fit the first screen's height beside the verdict and the headline table
(the report's top must read in three screens of a laptop's window)."""
from __future__ import annotations

from ...core.display import plot_text
from . import rounded, thin
from .capacity import MB, _iso

MONTH_FILL, BAR, NOW = "rgba(23,92,211,0.10)", "#98a2b3", "#175cd3"
HEIGHT = 330
GROWTH_TITLE, BILL_TITLE = "Database size of {target}, MB", "Estimated monthly bill, USD (each month's cost analysis)"


def growth_and_bill(series, start, end, month_label: str, bills, current: str, *, target: str = ""):
    """Database size over the months the history holds (the report month shaded) beside the estimated bill of
    each month that had a cost analysis (the report month dark). A panel without data is left out; None when
    neither has any.

    `series`: DataFrame[ts, value] in bytes; `start`, `end`: the report month (UTC datetimes); `bills`:
    DataFrame[month (YYYY-MM), label, monthly_cost_usd]; `current`: the report month's YYYY-MM."""
    import plotly.graph_objects as go  # noqa: PLC0415
    from plotly.subplots import make_subplots  # noqa: PLC0415

    has_growth = series is not None and len(series) >= 2
    b = bills.dropna(subset=["monthly_cost_usd"]) if bills is not None and len(bills) else None
    has_bill = b is not None and len(b) > 0
    if not has_growth and not has_bill:
        return None
    titles = ([GROWTH_TITLE.format(target=target)] if has_growth else []) + ([BILL_TITLE] if has_bill else [])
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=[plot_text(t) for t in titles],
                        column_widths=[0.58, 0.42] if len(titles) == 2 else None, horizontal_spacing=0.08)
    col = 1
    if has_growth:
        s = thin(series)
        fig.add_trace(go.Scatter(x=_iso(s["ts"]), y=rounded(s["value"] / MB, 2), mode="lines+markers",
                                 marker={"size": 4}, line={"color": NOW}, name="database size",
                                 hovertemplate="%{x|%Y-%m-%d}: %{y:,.1f} MB<extra></extra>"), row=1, col=col)
        fig.add_vrect(x0=start.isoformat(), x1=end.isoformat(), fillcolor=MONTH_FILL, line_width=0, layer="below",
                      annotation_text=plot_text(month_label), annotation_position="top left", row=1, col=col)
        top = float(s["value"].max() / MB)
        fig.update_yaxes(range=[0, top * 1.15 if top > 0 else 1], row=1, col=col)
        col += 1
    if has_bill:
        fig.add_trace(go.Bar(x=list(b["label"]), y=rounded(b["monthly_cost_usd"], 2), cliponaxis=False,
                             marker={"color": [NOW if k == current else BAR for k in b["month"]]},
                             text=[f"{v:,.2f}" for v in b["monthly_cost_usd"]], textposition="outside",
                             hovertemplate="%{x}: %{y:,.2f} USD<extra></extra>", name="bill"), row=1, col=col)
        fig.update_xaxes(type="category", row=1, col=col)
        fig.update_yaxes(range=[0, max(float(b["monthly_cost_usd"].max()), 1.0) * 1.2], row=1, col=col)
    fig.update_layout(height=HEIGHT, showlegend=False, margin={"t": 50, "b": 40})
    return fig
