"""Figures for backup verification and table recovery."""
from __future__ import annotations

from ...core.display import plot_text
from . import height_for

PHASE_COLORS = {"pre-data": "#98a2b3", "data": "#175cd3", "post-data": "#b54708"}
TOP_TABLES = 30


def row_counts(tables, top: int = TOP_TABLES):
    """Grouped horizontal bars: rows per table in the restore and live, the biggest tables first."""
    import plotly.graph_objects as go  # noqa: PLC0415

    df = tables.copy()
    df["label"] = (df["schema"] + "." + df["table"]).map(plot_text)  # plotly reads <, > and & as markup
    df["largest"] = df[["live_rows", "restored_rows"]].max(axis=1).fillna(0)
    df = df.sort_values("largest", ascending=False).head(top).iloc[::-1]
    fig = go.Figure()
    fig.add_bar(y=df["label"], x=df["live_rows"], name="live", orientation="h", marker_color="#667085")
    fig.add_bar(y=df["label"], x=df["restored_rows"], name="restored", orientation="h", marker_color="#175cd3")
    shown = f"the {top} largest of {len(tables)} tables" if len(tables) > top else f"{len(tables)} tables"
    fig.update_layout(barmode="group", height=height_for(len(df), per_row=26, chrome=150),
                      title=f"Rows per table: restored vs live ({shown})", xaxis_title="rows (log scale)",
                      xaxis_type="log", yaxis_title="", legend={"orientation": "h", "yanchor": "bottom", "y": 1.0,
                                                                "x": 0}, margin={"t": 90})
    return fig


def restore_timeline(events, top: int = 60):
    """The restore as it happened: one bar per object from start to end, coloured by phase; the slowest `top`
    objects keep their names, the rest are summed per phase so the chart stays readable."""
    import pandas as pd  # noqa: PLC0415
    import plotly.graph_objects as go  # noqa: PLC0415

    df = events.copy()
    df["label"] = (df["kind"].str.lower() + " " + df["name"]).map(plot_text)
    keep = df.nlargest(top, "duration_s").index
    rest = df.drop(keep)
    shown = df.loc[keep].sort_values("start_s")
    if len(rest):
        # the small ones, summed per phase: drawn from the phase's first start for their total time
        summary = rest.groupby("phase", as_index=False).agg(start_s=("start_s", "min"),
                                                            duration_s=("duration_s", "sum"), n=("name", "count"))
        summary["label"] = (summary["n"].astype(str) + " more " + summary["phase"] + " objects ("
                            + summary["duration_s"].round(2).astype(str) + " s in all)")
        summary["end_s"] = summary["start_s"] + summary["duration_s"]
        shown = pd.concat([shown, summary[["start_s", "end_s", "duration_s", "phase", "label"]]])
    fig = go.Figure()
    for phase, color in PHASE_COLORS.items():
        part = shown[shown["phase"] == phase]
        if len(part):
            fig.add_bar(y=part["label"], x=part["duration_s"], base=part["start_s"], orientation="h", name=phase,
                        marker_color=color, hovertemplate="%{y}<br>%{base:.3f} s + %{x:.3f} s<extra></extra>")
    total = float(df["end_s"].max()) if len(df) else 0.0
    fig.update_layout(height=height_for(len(shown), per_row=18, chrome=170), title=f"Restore timeline ({total:.2f} s)",
                      xaxis_title="seconds since the restore started", yaxis={"autorange": "reversed"},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0}, bargap=0.15,
                      margin={"t": 90})
    return fig


def recovery_summary(counts: dict[str, int]):
    """Rows of the table by what the comparison found: same, missing live, changed, newer live. A log axis from
    1 row, so a handful of missing rows shows beside thousands of same ones; a zero is written, not left blank."""
    import math  # noqa: PLC0415

    import plotly.graph_objects as go  # noqa: PLC0415

    colors = {"same": "#067647", "missing live": "#b42318", "changed": "#b54708", "newer live": "#667085"}
    labels = [k for k in colors if k in counts]
    values = [counts[k] for k in labels]
    fig = go.Figure(go.Bar(x=labels, y=[v if v > 0 else None for v in values],
                           marker_color=[colors[k] for k in labels], hoverinfo="x+y"))
    fig.add_scatter(x=labels, y=[max(v, 1) for v in values], mode="text", text=[f"{v:,}" for v in values],
                    textposition="top center", showlegend=False, hoverinfo="skip", cliponaxis=False)
    top = max(values, default=1)
    fig.update_layout(height=340, title="Backup rows compared with live, by key", yaxis_title="rows (log scale)",
                      yaxis={"type": "log", "range": [-0.05, math.log10(max(top, 1)) + 0.6], "dtick": 1},
                      margin={"t": 70}, showlegend=False)
    return fig
