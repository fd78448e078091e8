"""plotly figure builders (no database access) and the renderer that keeps reports offline.

The `opsbook` renderer emits each figure twice: as plotly's own mimetype, which JupyterLab draws, and as an
HTML fragment that calls `Plotly.newPlot` without bundling plotly.js. The exported report loads plotly.js once,
from a local copy beside the reports or inlined (`--self-contained`), so no figure needs the network.
"""
from __future__ import annotations

from typing import Any

RENDERER = "opsbook"
TEMPLATE = "plotly_white"
SEVERITY_COLORS = {"critical": "#b42318", "warning": "#b54708", "info": "#175cd3", "ok": "#067647"}


def setup() -> None:
    """Register and select the offline renderer; idempotent."""
    import plotly.io as pio  # noqa: PLC0415
    from plotly.io._base_renderers import MimetypeRenderer  # noqa: PLC0415

    if RENDERER not in pio.renderers:

        class OpsbookRenderer(MimetypeRenderer):
            def to_mimebundle(self, fig_dict: dict[str, Any]) -> dict[str, Any]:
                import json  # noqa: PLC0415

                import plotly.io as pio_  # noqa: PLC0415

                # through plotly's JSON encoder first: numpy datetimes and decimals become plain JSON values
                fig_dict = json.loads(pio_.to_json(fig_dict, validate=False))

                fragment = pio_.to_html(fig_dict, include_plotlyjs=False, full_html=False,
                                        config={"displaylogo": False, "responsive": True}, validate=False)
                return {"application/vnd.plotly.v1+json": {"data": fig_dict.get("data", []),
                                                           "layout": fig_dict.get("layout", {})},
                        "text/html": fragment}

        pio.renderers[RENDERER] = OpsbookRenderer()
    pio.renderers.default = RENDERER
    pio.templates.default = TEMPLATE


def show(fig) -> None:
    """Display a figure through the offline renderer."""
    setup()
    fig.show(renderer=RENDERER)
