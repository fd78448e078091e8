"""plotly figure builders (no database access) and the renderer that keeps reports offline.

The `opsbook` renderer emits each figure twice: as plotly's own mimetype, which JupyterLab draws, and as an
HTML fragment that calls `Plotly.newPlot` without bundling plotly.js. The exported report loads plotly.js once,
from a local copy beside the reports or inlined (`--self-contained`), so no figure needs the network.
"""
from __future__ import annotations

from typing import Any

RENDERER = "opsbook"
TEMPLATE = "plotly_white"
SEVERITY_COLORS = {"critical": "#b42318", "warning": "#b54708", "info": "#175cd3", "ok": "#067647"}  # = display
MAX_POINTS = 400  # a line over a 1,400 px chart shows no more than a few hundred points
FLOOR_PX, CAP_PX = 260, 1200  # a chart's height: from its rows, within these bounds
PRINT_WIDTH_PX = 680  # A4 portrait at the browser's default margins, in CSS px


# Printing (the browser's print to PDF) lays the page out at the paper's width, but a drawn chart keeps the width
# of the window: without this a 1,400 px chart is cut at the page's edge. Once per page, whatever the figures.
PRINT_FIT = """<script>(function(){if(window.obPrintFit)return;window.obPrintFit=1;
function each(f){document.querySelectorAll('.js-plotly-plot').forEach(function(g){if(window.Plotly)f(g);});}
window.addEventListener('beforeprint',function(){each(function(g){Plotly.relayout(g,{width:%d});});});
window.addEventListener('afterprint',function(){each(function(g){Plotly.relayout(g,{width:null,autosize:true});});});
})();</script>""" % PRINT_WIDTH_PX


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
                fragment += PRINT_FIT
                return {"application/vnd.plotly.v1+json": {"data": fig_dict.get("data", []),
                                                           "layout": fig_dict.get("layout", {})},
                        "text/html": fragment}

        pio.renderers[RENDERER] = OpsbookRenderer()
    pio.renderers.default = RENDERER
    pio.templates.default = TEMPLATE


def show(fig) -> None:
    """Display a figure through the offline renderer; None (a builder with nothing to draw) shows nothing."""
    if fig is None:
        return
    setup()
    fig.show(renderer=RENDERER)


def height_for(rows: int, *, per_row: int = 28, chrome: int = 150) -> int:
    """Height in px for a chart of `rows` rows (bars, tree nodes): room per row, within the floor and the cap."""
    return max(FLOOR_PX, min(CAP_PX, chrome + per_row * max(rows, 1)))


def thin(df, n: int = MAX_POINTS):
    """At most about n rows of a time series, evenly spaced, keeping the first and the last (what the eye sees)."""
    if df is None or len(df) <= n:
        return df
    step = -(-len(df) // n)
    keep = list(range(0, len(df), step))
    if keep[-1] != len(df) - 1:
        keep.append(len(df) - 1)
    return df.iloc[keep]


def rounded(values, digits: int = 3) -> list:
    """Plotted numbers to a precision the eye can see: smaller reports, no 0.30000000000000004 in hovers."""
    return [None if v is None or v != v else round(float(v), digits) for v in values]
