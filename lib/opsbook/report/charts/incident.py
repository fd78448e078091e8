"""Figures for incident triage: connections by state over clients, the blocking tree, the top statements."""
from __future__ import annotations

from ...core.display import human_ms, human_seconds, plot_text
from . import SEVERITY_COLORS, height_for, rounded

STATE_COLORS = {"active": "#175cd3", "idle": "#98a2b3", "idle in transaction": "#b42318",
                "idle in transaction (aborted)": "#7a271a", "hidden": "#667085", "unknown": "#667085",
                "prepared transaction": "#b54708", "fastpath function call": "#6941c6", "disabled": "#667085"}


MAX_CLIENTS = 20  # bars drawn; the rest are summed into one "N more clients" bar
MAX_DEPTH = 4  # tree levels drawn; deeper waiters are folded into an "N more" row
MAX_NODES = 30  # tree nodes drawn; the table below the chart lists every session


def connections_by_state(df):
    """Stacked horizontal bars: connections per client (application @ address), coloured by state, the busiest
    first. The axis fits the bars; the usable limit is a labelled line when it is within sight, else in the title."""
    import pandas as pd  # noqa: PLC0415
    import plotly.express as px  # noqa: PLC0415

    data = df.assign(client=(df["application_name"].replace("", "(no name)") + " @ "
                             + df["client_addr"].fillna("local")).map(plot_text))
    data = data.groupby(["client", "state"], as_index=False)["connections"].sum()
    order = data.groupby("client")["connections"].sum().sort_values(ascending=False).index.tolist()
    if len(order) > MAX_CLIENTS:
        rest = data[data["client"].isin(order[MAX_CLIENTS - 1:])]
        label = f"{len(order) - MAX_CLIENTS + 1} more clients"
        data = pd.concat([data[data["client"].isin(order[:MAX_CLIENTS - 1])],
                          rest.groupby("state", as_index=False)["connections"].sum().assign(client=label)])
        order = order[:MAX_CLIENTS - 1] + [label]
    fig = px.bar(data, y="client", x="connections", color="state", orientation="h", barmode="stack",
                 color_discrete_map=STATE_COLORS, category_orders={"client": order})
    peak = float(data.groupby("client")["connections"].sum().max()) if len(data) else 0.0
    title = "Connections by client and state"
    limits = df.attrs
    if limits.get("max_connections"):
        usable = limits["max_connections"] - limits.get("reserved_connections", 0)
        if peak >= usable / 2:  # near enough to matter: draw it and keep it in view
            fig.add_vline(x=usable, line_dash="dash", line_color=SEVERITY_COLORS["critical"],
                          annotation_text=f"usable limit {usable:,}", annotation_position="top")
            fig.update_xaxes(range=[0, max(peak, usable) * 1.08])
        else:
            title += f" (busiest client {peak:,.0f}; usable limit {usable:,}, far above)"
    fig.update_xaxes(tickformat=",d", **({"dtick": 1} if peak <= 10 else {}))  # connections are whole numbers
    fig.update_layout(title=title, height=height_for(len(order), per_row=26, chrome=170),
                      yaxis_title="", xaxis_title="connections", legend={"orientation": "h", "y": 1.0,
                                                                         "yanchor": "bottom", "x": 0},
                      margin={"t": 90})
    return fig


def fold(tree, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES):
    """(rows to draw, {pid of a drawn session: how many waiters behind it are not drawn})."""
    import pandas as pd  # noqa: PLC0415

    parent = {int(r.pid): (None if pd.isna(r.parent_pid) else int(r.parent_pid)) for r in tree.itertuples()}
    kept, hidden = set(), {}
    for r in tree.itertuples():
        pid, up = int(r.pid), parent[int(r.pid)]
        if r.depth <= max_depth and len(kept) < max_nodes and (up is None or up in kept):
            kept.add(pid)
            continue
        while up is not None and up not in kept:
            up = parent.get(up)
        if up is not None:
            hidden[up] = hidden.get(up, 0) + 1
    return tree[tree["pid"].astype(int).isin(kept)], hidden


def blocking_tree(tree):
    """The blocking tree drawn as a tree: roots on the left, each waiter one step right of the session it waits on.

    `tree` is the locks.blocking data (rows in tree order, with depth and parent_pid). Node colour is the session
    state, so a root that is idle in transaction stands out in red. Past MAX_DEPTH levels or MAX_NODES sessions
    the waiters are folded into one "N more" row per session they wait behind.
    """
    import pandas as pd  # noqa: PLC0415
    import plotly.graph_objects as go  # noqa: PLC0415

    fig = go.Figure()
    if tree is None or tree.empty:
        return None
    shown, hidden = fold(tree)
    y = {int(p): -i for i, p in enumerate(shown["pid"])}
    xs, ys = [], []
    for row in shown.itertuples():
        if not pd.isna(row.parent_pid):
            parent = int(row.parent_pid)
            xs += [row.depth - 1, row.depth - 1, row.depth, None]
            ys += [y[parent], y[int(row.pid)], y[int(row.pid)], None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": "#98a2b3", "width": 1.5}, hoverinfo="skip",
                             showlegend=False))
    for state, part in shown.groupby("state", sort=False):
        labels = [_node_label(r) for r in part.itertuples()]
        hover = [plot_text((r.query or "")[:300]) for r in part.itertuples()]
        fig.add_trace(go.Scatter(x=part["depth"], y=[y[int(p)] for p in part["pid"]], mode="markers+text",
                                 text=labels, textposition="middle right", hovertext=hover, hoverinfo="text",
                                 name=plot_text(state), marker={"size": 14, "color": STATE_COLORS.get(state, "#344054"),
                                                                "line": {"width": 1, "color": "#fff"}}))
    depth = int(shown["depth"].max())
    bottom = -len(shown)
    for i, (pid, n) in enumerate(sorted(hidden.items(), key=lambda kv: y[kv[0]])):
        node = shown[shown["pid"].astype(int) == pid].iloc[0]
        fig.add_trace(go.Scatter(x=[node["depth"] + 1], y=[bottom - i], mode="markers+text", showlegend=False,
                                 text=[f"{n:,} more waiting behind pid {pid} (listed in the table)"],
                                 textposition="middle right", hoverinfo="skip",
                                 marker={"size": 10, "color": "#d0d5dd", "symbol": "square"}))
    rows = len(shown) + len(hidden)
    title = "Blocking tree (roots left; each waiter to the right of the session it waits for)"
    if hidden:
        title += f": {len(shown)} of {len(tree)} sessions drawn"
    fig.update_layout(title=title, height=height_for(rows, per_row=30, chrome=150),
                      xaxis={"visible": False, "range": [-0.3, depth + 3.2]},
                      yaxis={"visible": False, "range": [-rows + 0.4, 0.6]},
                      legend={"title": "state", "orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
                      margin={"l": 10, "r": 10, "t": 90, "b": 20})
    return fig


def _node_label(r) -> str:
    if r.depth == 0:
        who = "prepared transaction" if int(r.pid) == 0 else f"pid {int(r.pid)}"
        return plot_text(f"{who} · {r.state} · blocks {r.blocked_count}")
    waited = human_seconds(r.wait_s) if r.wait_s == r.wait_s and r.wait_s is not None else "?"
    target = f"{r.lock_target} {r.lock_mode}" if r.lock_type == "relation" else (r.lock_target or r.lock_type)
    return plot_text(f"pid {int(r.pid)} · {target} · {waited}")


def top_statements(df, n: int = 10):
    """Horizontal bars: the statements with the most total execution time, labelled with their mean and calls."""
    import plotly.graph_objects as go  # noqa: PLC0415

    from ...checks.activity import visible  # noqa: PLC0415

    top = visible(df).nlargest(n, "total_exec_ms").iloc[::-1] if len(df) else df
    if not len(top):
        return None
    labels = [plot_text(" ".join((q or "").split())[:70]) for q in top["query"]]
    fig = go.Figure(go.Bar(
        x=rounded(top["total_exec_ms"] / 1000), y=labels, orientation="h", marker_color="#175cd3",
        text=[f"{human_ms(m)} × {c:,}" for m, c in zip(top["mean_exec_ms"], top["calls"])],
        textposition="auto", hovertext=[plot_text((q or "")[:400]) for q in top["query"]],
        hoverinfo="text+x"))
    own = df.attrs.get("own_excluded") or 0
    title = "Top statements by total execution time (label: mean × calls)"
    if own:
        title += f"<br><sup>{own:,} statements of opsbook itself (its own queries, pg_dump) left out</sup>"
    fig.update_layout(title=title,
                      height=height_for(len(top), per_row=30, chrome=150),
                      xaxis_title="total execution time (s)", yaxis={"automargin": True}, margin={"l": 10})
    return fig
