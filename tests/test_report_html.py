"""The HTML report and the index: offline, escaped, the plotly chart really drawn, code and parameters hidden."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from opsbook.report import html as report_html
from opsbook.run import runner
from opsbook.config.file import from_dict
from report_checks import assert_offline, assert_report_files, fetched_urls, rendered_dom
from report_checks import offline_sweep  # noqa: F401 - autouse: checks every page this module writes

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture(scope="module")
def chart(tmp_path_factory):
    """The chart fixture run once through the runner (shared plotly.js), hostile text in a parameter."""
    out = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPSBOOK_RUNBOOKS", str(FIXTURES))
        mp.delenv("OPSBOOK_CONFIG", raising=False)
        result = runner.run_runbook("chart", params={"label": HOSTILE, "window_minutes": 30},
                                    config=from_dict({}), output_dir=out)
    assert result.exit_code == 0, result.sidecar["error"]
    return result, out


def text(html: str) -> str:
    """What a reader sees: tags stripped (code is split into highlighting spans), entities decoded."""
    import html as h

    return h.unescape(re.sub(r"<[^>]+>", "", html))


def header(**kw) -> report_html.Header:
    base = dict(runbook="incident-triage", target="prod", target_display="postgresql://ops@db.example/postgres",
                status="ok", started_at="2026-11-21T22:48:12Z", duration_s=6.1, parameters={},
                counts={"critical": 1, "warning": 0, "info": 2, "ok": 3})
    return report_html.Header(**{**base, **kw})


def hand_made(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = list(cells)
    return nb


def tagged(source: str, tag: str):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata.tags = [tag]
    return cell


@pytest.mark.slow
def test_chart_report_is_small_offline_and_uses_one_shared_plotly(chart):
    result, out = chart
    assert_report_files(result.html_path.with_suffix(""))
    html = result.html_path.read_text()
    assert result.html_path.stat().st_size < 1_000_000
    scripts = [u for u in fetched_urls(html) if u.endswith(".js")]
    assert len(scripts) == 1 and re.fullmatch(r"\.\./plotly-\d+\.\d+\.\d+\.min\.js", scripts[0]), scripts
    shared = (result.html_path.parent / scripts[0]).resolve()
    assert shared.parent == out.resolve() and shared.read_bytes() == report_html.plotly_source().read_bytes()
    assert html.index(scripts[0]) < html.index("</head>"), "plotly.js loads once, in the head"
    div = re.search(r'<div id="([0-9a-f-]+)" class="plotly-graph-div"', html)
    assert div and f'Plotly.newPlot(                        "{div.group(1)}"' in html


@pytest.mark.slow
def test_the_chart_really_renders_and_needs_the_shared_copy(chart, tmp_path):
    result, _ = chart
    dom = rendered_dom(result.html_path)
    plot = dom[dom.index('class="plotly-graph-div'):]
    assert 'class="main-svg"' in plot and plot.count('<g class="point"') == 3, "three bars drawn"
    lonely = tmp_path / "elsewhere" / "day"
    lonely.mkdir(parents=True)
    shutil.copy(result.html_path, lonely / "copy.html")
    assert 'class="main-svg"' not in rendered_dom(lonely / "copy.html"), "control: without plotly.js no chart"


@pytest.mark.slow
def test_self_contained_report_opens_alone_with_code_but_never_parameters(chart, tmp_path):
    result, _ = chart
    nb = nbformat.read(result.notebook_path, as_version=4)
    alone = tmp_path / "alone" / "report.html"
    report_html.export(nb, alone, header(), reports_root=tmp_path / "unused", with_code=True, self_contained=True)
    assert not (tmp_path / "unused").exists(), "self-contained writes no shared copy"
    html = alone.read_text()
    assert_offline(alone)
    assert not [u for u in fetched_urls(html) if u.endswith(".js")] and alone.stat().st_size > 3_000_000
    dom = rendered_dom(alone)
    assert dom[dom.index('class="plotly-graph-div'):].count('<g class="point"') == 3
    assert "charts.setup()" in text(html), "--with-code keeps code cells"
    assert "ratio: float = 0.5" not in text(html), "the parameters cell never shows"
    assert "window_minutes = 30" not in text(html), "the injected-parameters cell never shows"


@pytest.mark.slow
def test_code_and_parameters_are_hidden_and_everything_is_escaped(chart):
    result, _ = chart
    html = result.html_path.read_text()
    seen = text(html)
    assert "charts.setup()" not in seen and "ratio: float" not in seen and "window_minutes = 30" not in seen
    assert HOSTILE not in html and "&lt;img src=x onerror=" in html, "parameter values are escaped in the header"
    assert "<script>alert(" not in html and "&lt;script&gt;alert(&quot;from the database&quot;)" in html
    top = html[html.index('<header class="ob-report">'):html.index("</header>")]
    assert "chart" in top and ">ran · worst warning<" in top and "window_minutes=30" in top and ">warning</span> 1" in top
    assert '<a href="../index.html">' in top


def test_a_report_without_charts_loads_no_script_and_shows_the_failure_first(tmp_path):
    nb = hand_made(nbformat.v4.new_markdown_cell("# Title"), tagged("secret_param = 1", "parameters"),
                   tagged("secret_param = 2", "injected-parameters"), nbformat.v4.new_code_cell("print('x')"))
    error = {"ename": "ValueError", "evalue": "bad <value>", "source": "raise ValueError('<b>')",
             "traceback": ["\x1b[0;31mValueError\x1b[0m: bad <value>"], "where": "code cell 2, section 'Title'"}
    path = report_html.export(nb, tmp_path / "2026-11-21" / "r.html", header(status="failed", error=error),
                              reports_root=tmp_path, with_code=True)
    html = path.read_text()
    assert_offline(path)
    assert "<script" not in html and not list(tmp_path.glob("plotly-*"))  # no chart: no plotly.js at all
    assert "secret_param" not in text(html) and "print('x')" in text(html)
    banner = html.index('class="ob-failure"')
    assert banner < html.index('<div class="jp-Cell') and "\x1b" not in html
    assert "bad &lt;value&gt;" in html and "raise ValueError('&lt;b&gt;')" in html
    assert "ValueError in code cell 2, section 'Title'" in text(html)


def test_a_failed_report_lists_every_finding_recorded_before_the_failure(tmp_path):
    nb = hand_made(nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("1/0"))
    found = [{"check": "locks.blocking", "severity": "critical", "title": "3 sessions blocked by <pid> 4711",
              "detail": "d", "objects": [], "value": 3, "threshold": 1, "remediation": None}]
    error = {"ename": "ZeroDivisionError", "evalue": "division by zero", "source": "1/0", "traceback": [],
             "where": "code cell 1"}
    html = report_html.export(nb, tmp_path / "d" / "r.html", header(status="failed", error=error, findings=found),
                              reports_root=tmp_path).read_text()
    banner = html[html.index('class="ob-failure"'):html.index("</section>")]
    assert "Findings recorded before the failure (1)" in banner and "3 sessions blocked by &lt;pid&gt; 4711" in banner
    ok = report_html.export(nb, tmp_path / "d" / "ok.html", header(findings=found), reports_root=tmp_path)
    assert "ob-failure" not in ok.read_text().split("</head>")[1], "an ok run has no failure banner"


def test_header_shows_the_password_free_target_and_counts(tmp_path):
    markup = report_html.header_html(header(parameters={"window_minutes": 60, "tags": ["a", "<b>"]}),
                                     tmp_path / "d" / "r.html", tmp_path)
    assert "postgresql://ops@db.example/postgres" in markup and "2026-11-21 22:48:12 UTC" in markup
    assert "window_minutes=60" in markup and "&lt;b&gt;" in markup and "<b>'" not in markup
    assert ">critical</span> 1" in markup and ">ok</span> 3" in markup and ">warning</span>" not in markup


def test_shared_plotly_is_copied_once(tmp_path):
    first = report_html.ensure_shared_plotly(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert report_html.ensure_shared_plotly(tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert first.name == f"plotly-{report_html.plotly_version()}.min.js" and not list(tmp_path.glob(".plotly-*"))


