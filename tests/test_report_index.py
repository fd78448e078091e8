"""The report index: health at a glance (worst severity), run status as text, filters, newest first, cheap."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from opsbook.report import index as report_index
from report_checks import assert_offline
from report_checks import offline_sweep  # noqa: F401 - autouse: checks every page this module writes


def write_sidecar(root: Path, day: str, stem: str, **fields) -> Path:
    (root / day).mkdir(parents=True, exist_ok=True)
    path = root / day / f"{stem}.json"
    path.write_text(json.dumps(fields))
    return path


def row_of(html: str, stem: str) -> str:
    start = html.rindex("<tr", 0, html.index(stem))
    return html[start:html.index("</tr>", start)]


def test_index_lists_runs_newest_first_by_month_escaped_and_skips_junk(tmp_path):
    write_sidecar(tmp_path, "2026-10-31", "capacity--prod--235959Z", runbook="capacity", target="prod", status="ok",
                  started_at="2026-10-31T23:59:59Z", duration_s=3.2,
                  findings=[{"severity": "warning"}, {"severity": "warning"}, {"severity": "ok"}])
    write_sidecar(tmp_path, "2026-11-21", "incident-triage--p-r-o-d--224812Z", runbook="incident-triage",
                  target="<script>x</script>", status="failed", started_at="2026-11-21T22:48:12Z",
                  error="ZeroDivisionError: <boom>", findings=[{"severity": "critical"}])
    write_sidecar(tmp_path, "2026-11-21", "incident-triage--prod--224813Z-2", runbook="incident-triage",
                  target="prod", status="ok", started_at="2026-11-21T22:48:13Z", findings=[])
    (tmp_path / "2026-11-21" / "incident-triage--prod--224813Z-2.missing.json").write_text("{}")
    (tmp_path / "2026-11-21" / "broken--prod--000000Z.json").write_text("{not json")
    (tmp_path / "notadate").mkdir()
    (tmp_path / "notadate" / "x--y--000000Z.json").write_text(json.dumps({"runbook": "x"}))
    path = report_index.write_index(tmp_path)
    html = path.read_text()
    assert_offline(path)
    assert re.findall(r"<h2>([^<]+)</h2>", html) == ["Newest report of each runbook, per target", "2026-11",
                                                     "Earlier months"]
    month = html[html.index("<h2>2026-11</h2>"):]
    assert month.index("224813Z-2.html") < month.index("224812Z.html"), "newest first"
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "3 runs" in html and 'href="index-2026-10.html"' in html
    older = (tmp_path / "index-2026-10.html").read_text()
    capacity_row = row_of(older, "capacity--prod")
    assert re.search(r'>warning</span> 2</td>', capacity_row)
    assert_offline(tmp_path / "index-2026-10.html")


def test_the_badge_is_the_worst_finding_and_the_status_is_text_with_a_reason():
    ok_with_criticals = report_index.summarize({"runbook": "incident-triage", "target": "prod", "status": "ok",
                                                "findings": [{"severity": "critical"}] * 2 + [{"severity": "ok"}]},
                                               "2026-11-21/incident-triage--prod--224812Z")
    failed = report_index.summarize(
        {"runbook": "cost-analysis", "target": "prod", "status": "failed", "findings": [],
         "error": "TypeError: unsupported operand type(s) for +: 'int' and 'NoneType' "
                  "(code cell 4, section 'This month's bill')"}, "2026-11-21/cost-analysis--prod--224813Z")
    html = report_index.render([ok_with_criticals, failed])
    good = row_of(html, "incident-triage--prod")
    cells = re.findall(r"<td[^>]*>(.*?)</td>", good)
    assert ">critical</span>" in cells[3] and cells[4] == "ran", "health badge, then the run status as text"
    assert ">ok</span>" not in cells[3]
    bad = row_of(html, "cost-analysis--prod")
    assert "failed" in bad and "no findings" in bad
    assert ("stopped at code cell 4, section &#x27;This month&#x27;s bill&#x27;: unsupported operand type(s) "
            "for +: &#x27;int&#x27; and &#x27;NoneType&#x27;") in bad
    assert 'title="TypeError"' in bad and ">TypeError:" not in bad


def test_newest_of_each_runbook_per_target_comes_first_and_filters_are_inline(tmp_path):
    for i, (rb, target) in enumerate([("capacity", "prod"), ("capacity", "prod"), ("capacity", "staging"),
                                      ("incident-triage", "prod")]):
        write_sidecar(tmp_path, "2026-11-21", f"{rb}--{target}--22481{i}Z", runbook=rb, target=target,
                      status="ok", started_at=f"2026-11-21T22:48:1{i}Z", findings=[])
    html = report_index.write_index(tmp_path).read_text()
    latest = html[html.index("Newest report"):html.index("<h2>2026-11</h2>")]
    assert re.findall(r'href="2026-11-21/([^"]+)\.html">(?!html<)[a-z-]+</a>', latest) == [
        "capacity--prod--224811Z", "incident-triage--prod--224813Z", "capacity--staging--224812Z"]
    assert '<option value="staging">' in html and '<option value="incident-triage">' in html
    assert "<script src" not in html and "function obFilter" in html


def test_a_new_run_reads_one_sidecar_not_all_of_them(tmp_path):
    """Unchanged day folders come from the cache: a sidecar rewritten in place (same size and mtime) in an old
    folder is not read again; a run added to that folder has it listed again, and a changed sidecar re-read.
    An older month's page is not rewritten by a run in the newest month."""
    old = write_sidecar(tmp_path, "2026-10-01", "capacity--prod--000000Z", runbook="capacity", target="prod",
                        status="ok", started_at="2026-10-01T00:00:00Z", findings=[{"severity": "warning"}])
    write_sidecar(tmp_path, "2026-11-01", "capacity--prod--000000Z", runbook="capacity", target="prod",
                  status="ok", started_at="2026-11-01T00:00:00Z", findings=[])
    report_index.write_index(tmp_path)
    page = tmp_path / "index-2026-10.html"
    assert ">warning</span> 1" in page.read_text()
    before = page.stat().st_mtime_ns
    st = old.stat()
    same_size = old.read_text().replace('{"severity": "warning"}', '{"severity": "info"}   ')
    assert len(same_size) == st.st_size
    old.write_text(same_size)
    os.utime(old, ns=(st.st_atime_ns, st.st_mtime_ns))
    write_sidecar(tmp_path, "2026-11-02", "capacity--prod--000000Z", runbook="capacity", target="prod",
                  status="ok", started_at="2026-11-02T00:00:00Z", findings=[])
    html = report_index.write_index(tmp_path).read_text()
    assert "3 runs" in html and page.stat().st_mtime_ns == before, "the old month came from the cache"
    os.utime(old)  # now it changed on disk, and a run lands in its day folder: that folder is listed again
    write_sidecar(tmp_path, "2026-10-01", "capacity--prod--000001Z", runbook="capacity", target="prod",
                  status="ok", started_at="2026-10-01T00:00:01Z", findings=[])
    report_index.write_index(tmp_path)
    assert ">info</span> 1" in page.read_text() and ">warning</span>" not in page.read_text()
    (tmp_path / "2026-10-01" / "capacity--prod--000001Z.json").unlink()
    old.unlink()
    report_index.write_index(tmp_path)
    assert not page.exists(), "a month with no run left has no page"


def test_an_empty_reports_folder_says_how_to_start(tmp_path):
    html = report_index.write_index(tmp_path).read_text()
    assert "No runs yet" in html and "<table" not in html


def test_links_only_to_files_a_run_has(tmp_path):
    """A JupyterLab session leaves only its sidecar, a fleet summary no notebook: the index links what exists."""
    import json

    from opsbook.report.index import write_index

    day = tmp_path / "2026-12-01"
    day.mkdir()
    for stem, extra in (("incident-triage--prod--010000Z", {"interactive": True}),
                        ("fleet--connect--020000Z", {"kind": "fleet"}),
                        ("capacity-planning--prod--030000Z", {})):
        (day / f"{stem}.json").write_text(json.dumps({"runbook": stem.split("--")[0], "target": "prod",
                                                      "status": "ok", "started_at": "2026-12-01T01:00:00Z",
                                                      "findings": [], **extra}))
    html = write_index(tmp_path).read_text()
    assert 'href="2026-12-01/incident-triage--prod--010000Z.html"' not in html
    assert 'href="2026-12-01/incident-triage--prod--010000Z.json">incident-triage' in html
    assert "stepped through in JupyterLab" in html
    assert 'href="2026-12-01/fleet--connect--020000Z.ipynb"' not in html
    assert 'href="2026-12-01/fleet--connect--020000Z.html"' in html
    assert 'href="2026-12-01/capacity-planning--prod--030000Z.ipynb"' in html
