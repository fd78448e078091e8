"""Figures for incident triage."""
from __future__ import annotations


def connections_by_state(df):
    """Stacked bars: connections per application, coloured by state."""
    import plotly.express as px  # noqa: PLC0415

    data = df.groupby(["application_name", "state"], as_index=False)["connections"].sum()
    data["application_name"] = data["application_name"].replace("", "(none)")
    fig = px.bar(data, x="application_name", y="connections", color="state", barmode="stack",
                 title="Connections by application and state")
    limits = df.attrs
    if limits.get("max_connections"):
        usable = limits["max_connections"] - limits.get("reserved_connections", 0)
        fig.add_hline(y=usable, line_dash="dash", annotation_text=f"usable limit {usable}")
    fig.update_layout(height=360, xaxis_title="application", yaxis_title="connections")
    return fig
