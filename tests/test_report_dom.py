"""The page checks themselves, in the real browser: they pass a page that reads well and catch each defect that
issue 11 saw in the reports (run on every demo report by test_make_demo.py::test_every_demo_report_reads_well).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from opsbook.report import html as report_html, index as report_index
from report_browser import MEASURE, browser, measure
from report_checks import offline_sweep  # noqa: F401 - autouse: checks every page this module writes
from report_checks import page_problems, require_chromium


@pytest.fixture(scope="module")
def chromium():
    require_chromium()
    with browser() as ctx:
        yield ctx


def page(folder: Path, body: str, figures: list[dict]) -> Path:
    """A page like a report: plotly.js from a local copy, each figure drawn by Plotly.newPlot."""
    shutil.copy(report_html.plotly_source(), folder / "plotly.min.js")
    divs = "".join(f'<div id="f{i}" class="plotly-graph-div"></div>' for i in range(len(figures)))
    calls = "".join(f"Plotly.newPlot('f{i}', {json.dumps(f['data'])}, {json.dumps(f['layout'])});"
                    for i, f in enumerate(figures))
    path = folder / "page.html"
    path.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><script src="plotly.min.js"></script></head>'
                    f"<body>{body}{divs}<script>{calls}</script></body></html>")
    return path


def bars(labels: list[str], height: int, **layout) -> dict:
    return {"data": [{"type": "bar", "orientation": "h", "y": labels, "x": list(range(1, len(labels) + 1))}],
            "layout": {"height": height, "width": 900, **layout}}


GOOD_TABLE = ('<h2>Sequences</h2><div class="ob-x"><table><thead><tr><th>usable_max</th><th>size_bytes</th>'
              "<th>amount_usd</th></tr></thead><tbody><tr><td>9,223,372,036,854,775,807</td><td>7.6 GB</td>"
              "<td>25.00</td></tr></tbody></table></div>")


def builder(fig) -> dict:
    fig = json.loads(fig.to_json())
    return {"data": fig["data"], "layout": fig["layout"]}


@pytest.fixture(scope="module")
def good(chromium, tmp_path_factory):
    """One page (one plotly.js load) with what reads well: formatted cells, a small bar chart, and the real
    chart builders on the data issue 11 saw: a blocking tree of 2 and of 200 waiters, a few connections."""
    from opsbook.report.charts import incident

    conns = connections()
    figures = [bars(["public.a", "public.b", "public.c"], 300, title={"text": "ok"}),
               builder(incident.blocking_tree(waiters(2))), builder(incident.blocking_tree(waiters(200))),
               builder(incident.connections_by_state(conns))]
    return measure(chromium, page(tmp_path_factory.mktemp("good"), GOOD_TABLE, figures))


def test_a_page_that_reads_well_passes(good):
    assert page_problems(good) == []


def test_each_defect_of_the_issue_is_caught(chromium, tmp_path):
    many = [f"pid {i}" for i in range(30)]
    figures = [
        bars(many, 192, title={"text": "Blocking tree"}),  # 192 px for 30 rows: labels overlap
        bars(["public.&quot;Mixed&quot;", "it&amp;#x27;s"], 300, title={"text": "escaped twice"}),
        {"data": [{"type": "scatter", "x": [1, 2], "y": [1, 2]}],
         "layout": {"height": 300, "width": 900, "title": {"text": "placeholder"},
                    "annotations": [{"text": "new text", "x": 1, "y": 1}]}},
        {"data": [{"type": "bar", "x": ["a"], "y": [None]}], "layout": {"height": 6924, "width": 900,
                                                                       "title": {"text": "too tall, no marks"}}},
    ]
    body = ('<h2>Numbers recorded for trends</h2><p>Database size goes to the sidecar.</p>'
            "<h2>Limits</h2><table><thead><tr><th>limit_value</th><th>size_bytes</th><th>days_left</th></tr></thead>"
            "<tbody><tr><td>100,000.00</td><td>8160437862</td><td>nan</td></tr></tbody></table>"
            '<p class="ob-muted">(no rows)</p><p>-0.0 s</p>')
    problems = "\n".join(page_problems(measure(chromium, page(tmp_path, body, figures))))
    for expected in ("'Blocking tree': ", "labels overlap", "text escaped twice", "placeholder text 'new text'",
                     "'too tall, no marks': height 6924 px", "no marks inside its plot area",
                     "section 'Numbers recorded for trends' shows nothing", "count with cents '100,000.00'",
                     "raw byte count '8160437862'", "table cell 'nan'", "page says '(no rows)'",
                     "page says '-0.0 s'"):
        assert expected in problems, f"{expected!r} not caught in:\n{problems}"


def test_the_index_filters_rows_in_the_page_itself(chromium, tmp_path):
    for i, (rb, target) in enumerate([("capacity", "prod"), ("capacity", "staging"), ("incident-triage", "prod")]):
        (tmp_path / "2026-11-21").mkdir(exist_ok=True)
        (tmp_path / "2026-11-21" / f"{rb}--{target}--22481{i}Z.json").write_text(json.dumps(
            {"runbook": rb, "target": target, "status": "ok", "started_at": f"2026-11-21T22:48:1{i}Z",
             "findings": [{"severity": "critical"}]}))
    index = report_index.write_index(tmp_path)
    p = chromium.new_page()
    try:
        p.goto(index.as_uri())
        visible = "() => [...document.querySelectorAll('tr[data-runbook]')].filter(r => !r.hidden).length"
        assert p.evaluate(visible) == 6  # the newest table and the month's table, 3 runs each
        p.select_option("#f-target", "prod")
        assert p.evaluate(visible) == 4
        p.select_option("#f-runbook", "capacity")
        assert p.evaluate(visible) == 2
        assert page_problems(p.evaluate(MEASURE)) == []
    finally:
        p.close()


def waiters(n: int):
    """A blocking tree in tree order: one idle-in-transaction root, five sessions waiting on it, n more on those."""
    import pandas as pd

    rows = [{"pid": 100, "parent_pid": None, "depth": 0, "state": "idle in transaction", "blocked_count": n,
             "wait_s": None, "lock_type": "transactionid", "lock_target": None, "lock_mode": None,
             "query": "UPDATE leads SET status = 'won' -- \"quoted\" & <tagged>"}]
    for first in range(5):
        rows.append({"pid": 101 + first, "parent_pid": 100, "depth": 1, "state": "active", "blocked_count": 0,
                     "wait_s": 20.2, "lock_type": "relation", "lock_target": 'public."Leads"',
                     "lock_mode": "RowExclusiveLock", "query": "UPDATE leads SET x = 1"})
        for i in range(n // 5):
            rows.append({"pid": 1000 + first * 1000 + i, "parent_pid": 101 + first, "depth": 2, "state": "active",
                         "blocked_count": 0, "wait_s": 3.0, "lock_type": "tuple", "lock_target": "public.leads (0,1)",
                         "lock_mode": "ExclusiveLock", "query": "SELECT 1"})
    return pd.DataFrame(rows)


def connections():
    import pandas as pd

    df = pd.DataFrame({"application_name": ["app", "app", "opsbook", "worker"],
                       "client_addr": ["10.0.0.1", "10.0.0.1", None, "10.0.0.2"],
                       "state": ["active", "idle", "active", "idle in transaction"], "connections": [1, 2, 1, 1]})
    df.attrs.update(max_connections=100, reserved_connections=3)
    return df


def test_the_blocking_tree_is_sized_to_its_rows_and_folds_a_crowd(good):
    small, crowd = good["figures"][1], good["figures"][2]
    assert 260 <= small["height"] <= 500 and small["rows"] == 6
    assert crowd["height"] <= 1200 and "30 of 206 sessions drawn" in crowd["title"]
    assert "more waiting behind pid" in good["text"]


def test_the_connections_axis_fits_a_few_clients_far_below_the_limit(good):
    fig = good["figures"][3]
    assert "usable limit 97, far above" in fig["title"]
    assert not fig["shapes"], "no limit line 30 times beyond the bars"


def test_charts_fit_the_paper_when_printed(chromium, tmp_path):
    """The browser's print fires beforeprint: every chart is laid out again at the paper's width, and back after."""
    import plotly.io as pio

    from opsbook.report import charts
    from opsbook.report.charts import incident

    charts.setup()
    fragment = pio.renderers[charts.RENDERER].to_mimebundle(incident.blocking_tree(waiters(2)).to_dict())["text/html"]
    shutil.copy(report_html.plotly_source(), tmp_path / "plotly.min.js")
    path = tmp_path / "print.html"
    path.write_text(f'<!DOCTYPE html><html><head><script src="plotly.min.js"></script></head><body>{fragment}'
                    "</body></html>")
    p = chromium.new_page()
    try:
        p.goto(path.as_uri())
        p.wait_for_selector("svg.main-svg")
        width = "() => +document.querySelector('svg.main-svg').getAttribute('width')"
        assert p.evaluate(width) > 1000  # the 1,400 px window
        p.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
        p.wait_for_function(f"() => ({width})() <= {charts.PRINT_WIDTH_PX}", timeout=5000)
        p.evaluate("() => window.dispatchEvent(new Event('afterprint'))")
        p.wait_for_function(f"() => ({width})() > 1000", timeout=5000)
    finally:
        p.close()
