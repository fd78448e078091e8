"""The runner end to end on small fixture notebooks: real kernels, real papermill, real HTML."""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import nbformat
import pytest

from opsbook.run import runner
from opsbook.config.file import from_dict
from opsbook.core.errors import ConfigError, ParameterError, UnknownRunbook, UnknownTarget, UsageError
from report_checks import assert_report_files
from report_checks import offline_sweep  # noqa: F401 - autouse: checks every page this module writes

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
ISOLATE = ("OPSBOOK_CONFIG", "OPSBOOK_RUN_RECORD", "OPSBOOK_REPORT_STEM", "PGPASSWORD")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run the fixtures once for the module: a failing one, a dead kernel, the empty one and the chart."""
    out = tmp_path_factory.mktemp("reports")
    config = from_dict({"targets": {"other": {"dsn": "host=127.0.0.1 port=1 dbname=x", "plan": "team"}},
                        "reports": {"dir": str(tmp_path_factory.mktemp("configured-reports"))}})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPSBOOK_RUNBOOKS", str(FIXTURES))
        for var in ISOLATE:
            mp.delenv(var, raising=False)
        yield {
            "raise": runner.run_runbook("failing", config=config, output_dir=out),
            "die": runner.run_runbook("failing", params={"mode": "die"}, config=config, output_dir=out),
            "empty": runner.run_runbook("empty", "other", config=config, output_dir=out),
            "chart": runner.run_runbook("chart", params={"window_minutes": "30", "pids": "1,2", "label": "none"},
                                        config=config, output_dir=out, fail_on="warning"),
            "config": config, "out": out,
        }


@pytest.fixture
def fixtures_dir(monkeypatch):
    monkeypatch.setenv("OPSBOOK_RUNBOOKS", str(FIXTURES))


def stem(result) -> Path:
    return result.html_path.with_suffix("")


@pytest.mark.slow
def test_contract_names_sidecar_and_index(runs):
    r = runs["empty"]
    sidecar = assert_report_files(stem(r))
    assert r.exit_code == 0 and r.sidecar == sidecar
    assert sidecar["runbook"] == "empty" and sidecar["target"] == "other" and sidecar["status"] == "ok"
    assert dt.datetime.strptime(sidecar["started_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert stem(r).name.startswith("empty--other--") and stem(r).parent.parent == runs["out"]
    assert sidecar["started_at"][:10] == stem(r).parent.name
    assert sidecar["duration_s"] > 0 and sidecar["error"] is None and sidecar["parameters"] == {}
    index = (runs["out"] / "index.html").read_text()
    for key in ("raise", "die", "empty", "chart"):
        assert f'href="{stem(runs[key]).parent.name}/{stem(runs[key]).name}.html"' in index
    assert r.to_json()["report_html"] == str(r.html_path) and r.to_json()["status"] == "ok"


@pytest.mark.slow
def test_a_failing_cell_still_writes_the_report_with_the_error_first(runs):
    r = runs["raise"]
    sidecar = assert_report_files(stem(r))
    assert r.exit_code == 1 and sidecar["status"] == "failed"
    assert sidecar["error"].startswith("ZeroDivisionError: boom: the failing step")
    assert "code cell 4" in sidecar["error"] and "section 'The failing step'" in sidecar["error"]
    assert sidecar["metrics"] == {"before_failure_count": 1}, "what was recorded before the failure is kept"
    html = r.html_path.read_text()
    banner = html.index('class="ob-failure"')
    assert banner < html.index('<div class="jp-Cell'), "the error comes before the first cell"
    assert "raise ZeroDivisionError('boom: the failing step')" in html[banner:html.index("</section>", banner)]
    assert "An Exception was encountered" not in html, "papermill's own top note is replaced by the banner"
    nb = nbformat.read(r.notebook_path, as_version=4)
    assert any(o.get("ename") == "ZeroDivisionError" for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_a_failed_run_shows_its_traceback_once_folded_under_one_line_of_reason(runs):
    html = runs["raise"].html_path.read_text()
    assert html.count("Traceback (most recent call last)") == 1, "the traceback once, not in the cell again"
    banner = html[html.index('class="ob-failure"'):html.index("</section>")]
    assert banner.index("<details>") < banner.index("Traceback (most recent call last)"), "folded"
    assert "<b>boom: the failing step</b>" in banner.split("<details>")[0], "one line of reason, unfolded"
    cell = html[html.index('id="papermill-error-cell"'):]
    assert cell.index("The run stopped here") < cell.index("</div></div>") and "boom: the failing step" in cell
    assert "first half done" in html and html.index("first half done") < html.index('id="papermill-error-cell"')


@pytest.mark.slow
def test_a_dead_kernel_is_a_failed_run_with_a_report(runs):
    r = runs["die"]
    sidecar = assert_report_files(stem(r))
    assert r.exit_code == 1 and sidecar["status"] == "failed" and sidecar["parameters"] == {"mode": "die"}
    assert sidecar["error"].startswith("DeadKernelError: the kernel died") and "code cell 4" in sidecar["error"]
    html = r.html_path.read_text()
    assert html.index('class="ob-failure"') < html.index('<div class="jp-Cell') and "os._exit(1)" in html


@pytest.mark.slow
def test_the_kernel_gets_the_venv_python_the_runbooks_folder_and_the_same_config(runs):
    r = runs["chart"]
    nb = nbformat.read(r.notebook_path, as_version=4)
    printed = next(o["text"] for c in nb.cells for o in c.get("outputs", []) if '"executable"' in o.get("text", ""))
    seen = json.loads(printed)
    assert Path(seen["executable"]).parent == Path(sys.executable).parent, "kernel runs the venv's python"
    assert seen["cwd"] == str(FIXTURES)
    assert seen["targets"] == ["demo", "other"], "an in-process Config reaches the kernel"
    assert seen["reports_dir"] == str(runs["config"].reports_dir.absolute())
    assert seen["stem"] == str(stem(r))
    assert seen["params"] == [30, 0.5, False, None, [1, 2], ["a"]]
    assert not Path(seen["config"]).exists(), "the temporary config is removed after the run"
    assert r.sidecar["parameters"] == {"window_minutes": 30, "pids": [1, 2], "label": None}
    assert r.sidecar["server_version_num"] == 180001
    assert r.sidecar["metrics"] == {"window_minutes": 30}
    assert [f["severity"] for f in r.sidecar["findings"]] == ["warning"]
    assert r.exit_code == 3, "--fail-on warning matched the warning finding"


def test_exit_codes_by_status_and_fail_on():
    warn = {"status": "ok", "findings": [{"severity": "warning"}, {"severity": "ok"}]}
    assert runner._exit_code(warn, None) == 0
    assert runner._exit_code(warn, "critical") == 0
    assert runner._exit_code(warn, "warning") == 3
    assert runner._exit_code({"status": "failed", "findings": [{"severity": "critical"}]}, "critical") == 1


@pytest.mark.parametrize("call, error, message", [
    (dict(name="nope"), UnknownRunbook, "runbook 'nope' not found; known: chart, connect, empty, failing"),
    (dict(name="../runbooks/incident-triage"), UnknownRunbook, "not found"),
    (dict(name="chart", target="prod"), UnknownTarget, "target 'prod' not found"),
    (dict(name="chart", params={"windw": "1"}), ParameterError, "unknown parameter 'windw'"),
    (dict(name="chart", params={"ratio": "half"}), ParameterError, "parameter 'ratio' expects float"),
    (dict(name="chart", params={"target": "demo"}), ParameterError, "use --target"),
    (dict(name="chart", params={"thresholds": '{"no.such": {"warning": 1}}'}), UsageError, "unknown check"),
    (dict(name="chart", params={"thresholds": '{"activity.long_running": {"warnin": 1}}'}), ParameterError,
     "has no threshold 'warnin'"),
    (dict(name="chart", params={"thresholds": '{"activity.long_running": 5}'}), ParameterError, "must be an object"),
    (dict(name="chart", fail_on="info"), UsageError, "--fail-on must be one of warning, critical"),
    (dict(name="chart", target="env"), ConfigError, "OPSBOOK_TEST_UNSET_DSN is not set"),
])
def test_bad_input_fails_before_anything_runs(fixtures_dir, tmp_path, call, error, message):
    config = from_dict({"targets": {"env": {"dsn_env": "OPSBOOK_TEST_UNSET_DSN"}}})
    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")) as e:
        runner.run_runbook(config=config, output_dir=tmp_path / "reports", **call)
    assert e.value.exit_code == 2 and "\n" not in str(e.value)
    assert not (tmp_path / "reports").exists(), "no report for a usage error"


def test_runs_in_the_same_second_get_distinct_names(tmp_path):
    at = dt.datetime(2026, 11, 21, 22, 48, 12, tzinfo=dt.timezone.utc)
    first = runner.reserve_stem(tmp_path, "incident-triage", "prod", at)
    second = runner.reserve_stem(tmp_path, "incident-triage", "prod", at)
    assert first == tmp_path / "2026-11-21" / "incident-triage--prod--224812Z"
    assert second.name == "incident-triage--prod--224812Z-2"


def test_discovery_list_and_describe(fixtures_dir, monkeypatch, tmp_path):
    assert dict(runner.list_runbooks())["empty"] == "The floor: a kernel start and an HTML export, nothing else."
    assert [p.name for p in runner.describe("failing")] == ["target", "mode"]
    monkeypatch.delenv("OPSBOOK_RUNBOOKS")
    assert runner.runbooks_dir() == Path(__file__).resolve().parents[1] / "runbooks"
    assert "incident-triage" in runner.runbook_names()


@pytest.mark.slow
def test_run_all_runs_every_runbook_with_progress(tmp_path, monkeypatch):
    folder = tmp_path / "rbs"
    folder.mkdir()
    for name in ("empty", "failing"):
        (folder / f"{name}.ipynb").write_text((FIXTURES / f"{name}.ipynb").read_text())
    monkeypatch.setenv("OPSBOOK_RUNBOOKS", str(folder))
    lines: list[str] = []
    results = runner.run_all("demo", config=from_dict({}), output_dir=tmp_path / "out", progress=lines.append)
    assert [r.sidecar["runbook"] for r in results] == ["empty", "failing"]
    assert [r.exit_code for r in results] == [0, 1]
    assert lines[0] == "[1/2] empty on demo ..." and lines[1].startswith("[1/2] empty: ok in ")
    assert lines[3].startswith("[2/2] failing: failed in ")
    index = (tmp_path / "out" / "index.html").read_text()
    # the index opens with the newest run of each runbook, then lists every run of the month newest first
    assert index.rindex("failing--demo--") < index.rindex("empty--demo--"), "newest first in the month's list"
