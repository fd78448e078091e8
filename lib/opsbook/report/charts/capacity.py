"""Figures for capacity planning: size history with forecast and limits, top growing tables, reclaimable space."""
from __future__ import annotations

from ...core.display import human_bytes, plot_text
from . import SEVERITY_COLORS, height_for, rounded, thin

MB = 1024 ** 2


def _iso(ts) -> list[str]:
    """Timestamps as ISO strings: the offline renderer serialises figure dicts without plotly's validation, which
    cannot encode numpy datetime64 arrays."""
    import pandas as pd  # noqa: PLC0415

    return [t.isoformat() for t in pd.to_datetime(pd.Series(ts), utc=True)]


def size_forecast(series, fc, limit_rows, horizon_days: float, *, simulated: bool = False,
                  trigger_pct: float = 80, title: str = "Database size: history, forecast and limits"):
    """History (solid), forecast with its 90% band (dashed, shaded), and each limit with its trigger line.

    The axis fits the history and the forecast; a limit (or its trigger) beyond them is named in the title
    instead of stretching the axis until the data is a flat line at the bottom.

    `series`: DataFrame[ts, value] in bytes; `fc`: an opsbook.history.forecast.Forecast; `limit_rows`: rows with
    `limit` and `limit_value` (bytes)."""
    import plotly.graph_objects as go  # noqa: PLC0415

    fig = go.Figure()
    series = thin(series)
    fig.add_trace(go.Scatter(x=_iso(series["ts"]), y=rounded(series["value"] / MB, 2), mode="lines+markers",
                             name="measured", marker={"size": 4}, line={"color": "#175cd3"}))
    top = float(series["value"].max() / MB) if len(series) else 0.0
    if fc is not None and fc.ok:
        f = thin(fc.frame(horizon_days))
        x = _iso(f["ts"])
        fig.add_trace(go.Scatter(x=x + x[::-1], y=rounded(list(f["upper"] / MB) + list(f["lower"][::-1] / MB), 2),
                                 fill="toself", fillcolor="rgba(23,92,211,0.12)", line={"width": 0},
                                 hoverinfo="skip", name="90% band"))
        fig.add_trace(go.Scatter(x=x, y=rounded(f["value"] / MB, 2), mode="lines", name=f"forecast ({fc.model})",
                                 line={"dash": "dash", "color": "#175cd3"}))
        top = max(top, float(f["upper"].max() / MB))
    view = top * 1.25 if top > 0 else 1.0
    beyond = []
    rows = limit_rows.itertuples() if hasattr(limit_rows, "itertuples") else limit_rows
    for row in rows:
        value = row.limit_value / MB
        lines = ((value, f"{row.limit} ({human_bytes(row.limit_value)})", SEVERITY_COLORS["critical"], "solid"),
                 (value * trigger_pct / 100, f"{trigger_pct:g}% of {row.limit}", SEVERITY_COLORS["warning"], "dot"))
        for y, label, color, dash in lines:
            if y <= view:
                view = max(view, y * 1.08)
                fig.add_hline(y=y, line={"color": color, "width": 1.5 if dash == "solid" else 1, "dash": dash},
                              annotation_text=plot_text(label), annotation_position="top left")
            elif dash == "solid":
                beyond.append(f"{row.limit} at {human_bytes(row.limit_value)}")
    sub = " (history replayed with a simulated clock)" if simulated else ""
    far = f"<br><sup>above the chart: {plot_text('; '.join(beyond))}</sup>" if beyond else ""
    fig.update_layout(title=plot_text(title + sub) + far, height=440, yaxis_title="MB", xaxis_title="",
                      yaxis={"range": [0, view]}, legend={"orientation": "h", "y": -0.15}, margin={"t": 90})
    return fig


def top_growing_tables(sizes, growth, top: int = 8):
    """Total size (table + indexes) over time of the `top` tables that grew most."""
    import pandas as pd  # noqa: PLC0415
    import plotly.express as px  # noqa: PLC0415

    names = list(growth.head(top)["table_name"])
    data = sizes[sizes["table_name"].isin(names)].copy()
    data["table"] = (data["schema_name"] + "." + data["table_name"]).map(plot_text)  # plotly reads <, > and &
    data = pd.concat([thin(part) for _, part in data.groupby("table", sort=False)]) if len(data) else data
    data["total_mb"] = rounded(data["total_bytes"] / MB, 2)
    data["ts"] = _iso(data["ts"])
    fig = px.line(data, x="ts", y="total_mb", color="table", title=f"Top {len(names)} growing tables",
                  category_orders={"table": [plot_text(f"{s}.{t}") for s, t in zip(growth['schema_name'],
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
        b["object"] = (b["schema_name"] + "." + b["index_name"].fillna(b["table_name"])).map(plot_text)
        b["what"] = "bloat in " + b["kind"] + "s (estimate)"
        parts.append(b[["object", "what", "bloat_bytes"]].rename(columns={"bloat_bytes": "bytes"}))
    if unused is not None and len(unused):
        u = unused.copy()
        u["object"] = (u["schema_name"] + "." + u["index_name"]).map(plot_text)
        u["what"] = "unused index"
        parts.append(u[["object", "what", "size_bytes"]].rename(columns={"size_bytes": "bytes"}))
    data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["object", "what", "bytes"])
    data = data.sort_values("bytes", ascending=False).head(top)
    data["mb"] = rounded(data["bytes"] / MB, 2)
    total = data["mb"].sum()
    fig = px.bar(data, x="mb", y="object", color="what", orientation="h",
                 title=f"Space that could be reclaimed: {total:,.1f} MB in the top {len(data)}")
    fig.update_layout(height=height_for(len(data), per_row=28, chrome=150), xaxis_title="MB", yaxis_title="",
                      yaxis={"autorange": "reversed"}, legend={"orientation": "h", "y": -0.2})
    return fig
