"""Figures for capacity planning: size history with forecast and limits, top growing tables, reclaimable space."""
from __future__ import annotations

from ..display import esc

MB = 1024 ** 2


def _iso(ts) -> list[str]:
    """Timestamps as ISO strings: the offline renderer serialises figure dicts without plotly's validation, which
    cannot encode numpy datetime64 arrays."""
    import pandas as pd  # noqa: PLC0415

    return [t.isoformat() for t in pd.to_datetime(pd.Series(ts), utc=True)]


def size_forecast(series, fc, limit_rows, horizon_days: float, *, simulated: bool = False,
                  trigger_pct: float = 80, title: str = "Database size: history, forecast and limits"):
    """History (solid), forecast with its 90% band (dashed, shaded), and each limit with its trigger line.

    `series`: DataFrame[ts, value] in bytes; `fc`: an opsbook.forecast.Forecast; `limit_rows`: rows with
    `limit` and `limit_value` (bytes)."""
    import plotly.graph_objects as go  # noqa: PLC0415

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=_iso(series["ts"]), y=list(series["value"] / MB), mode="lines+markers", name="measured",
                             marker={"size": 4}, line={"color": "#175cd3"}))
    if fc is not None and fc.ok:
        f = fc.frame(horizon_days)
        x = _iso(f["ts"])
        fig.add_trace(go.Scatter(x=x + x[::-1],
                                 y=list(f["upper"] / MB) + list(f["lower"][::-1] / MB), fill="toself",
                                 fillcolor="rgba(23,92,211,0.12)", line={"width": 0}, hoverinfo="skip",
                                 name="90% band"))
        fig.add_trace(go.Scatter(x=x, y=list(f["value"] / MB), mode="lines", name=f"forecast ({fc.model})",
                                 line={"dash": "dash", "color": "#175cd3"}))
    for i, row in enumerate(limit_rows.itertuples() if hasattr(limit_rows, "itertuples") else limit_rows):
        value = row.limit_value / MB
        fig.add_hline(y=value, line={"color": "#b42318", "width": 1.5},
                      annotation_text=f"{row.limit} ({value:,.0f} MB)", annotation_position="top left")
        fig.add_hline(y=value * trigger_pct / 100, line={"color": "#b54708", "width": 1, "dash": "dot"},
                      annotation_text=f"{trigger_pct:g}% trigger" if i == 0 else None,
                      annotation_position="bottom left")
    sub = " (history replayed with a simulated clock)" if simulated else ""
    fig.update_layout(title=title + sub, height=420, yaxis_title="MB", xaxis_title="",
                      legend={"orientation": "h", "y": -0.15})
    return fig


def top_growing_tables(sizes, growth, top: int = 8):
    """Total size (table + indexes) over time of the `top` tables that grew most."""
    import plotly.express as px  # noqa: PLC0415

    names = list(growth.head(top)["table_name"])
    data = sizes[sizes["table_name"].isin(names)].copy()
    data["table"] = (data["schema_name"] + "." + data["table_name"]).map(esc)  # plotly renders HTML in labels
    data["total_mb"] = data["total_bytes"] / MB
    data["ts"] = _iso(data["ts"])
    fig = px.line(data, x="ts", y="total_mb", color="table", title=f"Top {len(names)} growing tables",
                  category_orders={"table": [esc(f"{s}.{t}") for s, t in zip(growth['schema_name'],
                                                                               growth['table_name'])]})
    fig.update_layout(height=380, yaxis_title="MB (table + indexes)", xaxis_title="",
                      legend={"orientation": "h", "y": -0.2})
    return fig


def reclaimable(bloat, unused, top: int = 12):
    """Bytes a rewrite (estimated bloat) or dropping unused indexes would give back, biggest first."""
    import pandas as pd  # noqa: PLC0415
    import plotly.express as px  # noqa: PLC0415

    parts = []
    if bloat is not None and len(bloat):
        b = bloat[bloat["bloat_bytes"] > 0].copy()
        b["object"] = (b["schema_name"] + "." + b["index_name"].fillna(b["table_name"])).map(esc)
        b["what"] = "bloat in " + b["kind"] + "s (estimate)"
        parts.append(b[["object", "what", "bloat_bytes"]].rename(columns={"bloat_bytes": "bytes"}))
    if unused is not None and len(unused):
        u = unused.copy()
        u["object"] = (u["schema_name"] + "." + u["index_name"]).map(esc)
        u["what"] = "unused index"
        parts.append(u[["object", "what", "size_bytes"]].rename(columns={"size_bytes": "bytes"}))
    data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["object", "what", "bytes"])
    data = data.sort_values("bytes", ascending=False).head(top)
    data["mb"] = data["bytes"] / MB
    total = data["mb"].sum()
    fig = px.bar(data, x="mb", y="object", color="what", orientation="h",
                 title=f"Space that could be reclaimed: {total:,.1f} MB in the top {len(data)}")
    fig.update_layout(height=max(260, 28 * len(data) + 120), xaxis_title="MB", yaxis_title="",
                      yaxis={"autorange": "reversed"}, legend={"orientation": "h", "y": -0.2})
    return fig
