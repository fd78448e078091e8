"""The post-mortem timeline chart: samples and log series over the padded window, the incident shaded."""
from __future__ import annotations


def timeline(samples, logs, window):
    import plotly.graph_objects as go  # noqa: PLC0415
    from plotly.subplots import make_subplots  # noqa: PLC0415

    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("sessions (samples)", "throughput (samples)", "log events per minute"))
    if samples is not None and len(samples):
        for col in ("active", "idle", "idle_in_transaction", "waiting"):
            fig.add_trace(go.Scatter(x=samples["ts"], y=samples[col], name=col.replace("_", " "),
                                     stackgroup="s" if col != "waiting" else None, mode="lines"), row=1, col=1)
        for col in ("tps", "rollbacks_per_s"):
            if col in samples:
                fig.add_trace(go.Scatter(x=samples["ts"], y=samples[col], name=col.replace("_", " "),
                                         mode="lines"), row=2, col=1)
        if "deadlocks" in samples:
            fig.add_trace(go.Bar(x=samples["ts"], y=samples["deadlocks"], name="deadlocks (counter)"), row=2, col=1)
    if logs is not None and len(logs):
        for col in ("errors", "lock_waits", "timeouts", "deadlocks_log", "refused", "temp_files"):
            fig.add_trace(go.Bar(x=logs["ts"], y=logs[col], name=col.replace("_", " ") + " (log)"), row=3, col=1)
    for row in (1, 2, 3):
        fig.add_vrect(x0=window.start, x1=window.end, fillcolor="#d62728", opacity=0.12, line_width=0,
                      row=row, col=1)
    fig.update_layout(height=620, barmode="stack", margin={"l": 40, "r": 10, "t": 40, "b": 30},
                      legend={"orientation": "h"})
    fig.update_xaxes(range=[window.before, window.after])
    return fig
