"""Figures for incident triage: connections by state over clients, the blocking tree, the top statements."""
from __future__ import annotations

from ..display import esc, human_seconds

STATE_COLORS = {"active": "#175cd3", "idle": "#98a2b3", "idle in transaction": "#b42318",
                "idle in transaction (aborted)": "#7a271a", "hidden": "#667085", "unknown": "#667085",
                "prepared transaction": "#b54708", "fastpath function call": "#6941c6", "disabled": "#667085"}


def connections_by_state(df):
    """Stacked bars: connections per client (application @ address), coloured by state; the usable limit drawn."""
    import plotly.express as px  # noqa: PLC0415

    data = df.assign(client=(df["application_name"].replace("", "(no name)") + " @ " + df["client_addr"]).map(esc))
    data = data.groupby(["client", "state"], as_index=False)["connections"].sum()
    order = data.groupby("client")["connections"].sum().sort_values(ascending=False).index.tolist()
    fig = px.bar(data, x="client", y="connections", color="state", barmode="stack", color_discrete_map=STATE_COLORS,
                 category_orders={"client": order[:20]}, title="Connections by client and state")
    limits = df.attrs
    if limits.get("max_connections"):
        usable = limits["max_connections"] - limits.get("reserved_connections", 0)
        fig.add_hline(y=usable, line_dash="dash", annotation_text=f"usable limit {usable}")
    fig.update_layout(height=360, xaxis_title="application @ client", yaxis_title="connections")
    return fig


def blocking_tree(tree):
    """The blocking tree drawn as a tree: roots on the left, each waiter one step right of the session it waits on.

    `tree` is the locks.blocking data (rows in tree order, with depth and parent_pid). Node colour is the session
    state, so a root that is idle in transaction stands out in red.
    """
    import pandas as pd  # noqa: PLC0415
    import plotly.graph_objects as go  # noqa: PLC0415

    fig = go.Figure()
    if tree is None or tree.empty:
        return fig.update_layout(title="Blocking tree: nobody is waiting on a lock", height=120)
    y = {int(p): -i for i, p in enumerate(tree["pid"])}
    xs, ys = [], []
    for row in tree.itertuples():
        if not pd.isna(row.parent_pid):
            parent = int(row.parent_pid)
            xs += [row.depth - 1, row.depth - 1, row.depth, None]
            ys += [y[parent], y[int(row.pid)], y[int(row.pid)], None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": "#98a2b3", "width": 1.5}, hoverinfo="skip",
                             showlegend=False))
    for state, part in tree.groupby("state", sort=False):
        labels = [_node_label(r) for r in part.itertuples()]
        hover = [esc((r.query or "")[:300]) for r in part.itertuples()]
        fig.add_trace(go.Scatter(x=part["depth"], y=[y[int(p)] for p in part["pid"]], mode="markers+text",
                                 text=labels, textposition="middle right", hovertext=hover, hoverinfo="text",
                                 name=esc(state), marker={"size": 14, "color": STATE_COLORS.get(state, "#344054"),
                                                          "line": {"width": 1, "color": "#fff"}}))
    depth = int(tree["depth"].max())
    fig.update_layout(title="Blocking tree (roots left; each waiter to the right of the session it waits for)",
                      height=90 + 34 * len(tree), xaxis={"visible": False, "range": [-0.3, depth + 2.6]},
                      yaxis={"visible": False}, legend={"title": "state"}, margin={"l": 10, "r": 10})
    return fig


def _node_label(r) -> str:
    if r.depth == 0:
        who = "prepared transaction" if int(r.pid) == 0 else f"pid {int(r.pid)}"
        return esc(f"{who} · {r.state} · blocks {r.blocked_count}")
    waited = human_seconds(r.wait_s) if r.wait_s == r.wait_s and r.wait_s is not None else "?"
    target = f"{r.lock_target} {r.lock_mode}" if r.lock_type == "relation" else (r.lock_target or r.lock_type)
    return esc(f"pid {int(r.pid)} · {target} · {waited}")


def top_statements(df, n: int = 10):
    """Horizontal bars: the statements with the most total execution time, labelled with their mean and calls."""
    import plotly.graph_objects as go  # noqa: PLC0415

    from ..checks.activity import visible  # noqa: PLC0415

    top = visible(df).nlargest(n, "total_exec_ms").iloc[::-1] if len(df) else df
    labels = [esc(" ".join((q or "").split())[:70]) for q in top["query"]] if len(top) else []
    fig = go.Figure(go.Bar(
        x=top["total_exec_ms"] / 1000 if len(top) else [], y=labels, orientation="h", marker_color="#175cd3",
        text=[f"{m:,.1f} ms × {c:,}" for m, c in zip(top["mean_exec_ms"], top["calls"])] if len(top) else [],
        textposition="auto", hovertext=[esc((q or "")[:400]) for q in top["query"]] if len(top) else [],
        hoverinfo="text+x"))
    fig.update_layout(title="Top statements by total execution time (label: mean × calls)", height=120 + 30 * len(top),
                      xaxis_title="total execution time (s)", yaxis={"automargin": True}, margin={"l": 10})
    return fig
