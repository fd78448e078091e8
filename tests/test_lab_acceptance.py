"""Issue 23's acceptance, in a real browser: `opsbook lab incident-triage --target test` (a real JupyterLab on a
working copy), headless Chromium driving Lab's own menus, a real blocker on a real server.

One Lab, one browser page, in the order an on-call engineer works: Run All, click the blocker's button and its
confirmation, let autosave write the copy; then what must hold: the tracked runbooks are byte for byte as before,
the blocker is gone and its waiter got its row, a following `opsbook run` terminates nothing, the run's sidecar
holds exactly its own findings and one remediation, the Remediation cell runs again after the last cell, the
verdict and table headers read well in the light and dark themes (screenshots kept), and each bad value typed in
the parameters cell stops at the first library call with the command line's own one line.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from faults import Faults, alive, make_tables, pid
from report_browser import CHROMIUM, browser
from labpage import KERNEL_READY
from test_lab_signal import DEADLINE_S, wait_for
from test_lab_theme import CONTRASTS, MIN_CONTRAST
from test_lab_workcopy import Lab

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM, reason="needs chromium")]

PAGE_TIMEOUT_MS = 180_000  # Lab's first load and a cold kernel on a busy 2-core machine
AUTOSAVE_S = 1  # Lab's autosave interval for this Lab, set through its settings API (default 120 s)
DOCMANAGER = "@jupyterlab/docmanager-extension:plugin"
# windowingMode "none": every cell in the DOM, found by index; autoStartDefaultKernel: the copy's own kernel starts
# without Lab's "Select Kernel" dialog, which Lab otherwise shows at times on a busy machine (kernelspecs not loaded)
NOTEBOOK = "@jupyterlab/notebook-extension:tracker"
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
# (line appended to a parameters cell, the same value on the command line)
BAD = [("statement_timeout_ms = 0", ["-p", "statement_timeout_ms=0"]),
       ("top_statements = -5", ["-p", "top_statements=-5"]),
       ('top_statements = "twenty"', ["-p", "top_statements=twenty"]),
       ('target = "nope"', ["--target", "nope"])]


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.ipynb"))}


def config_text(db, tmp_path: Path) -> str:
    """Target `test` is the fixture database; a blocked session counts at once (not after deadlock_timeout)."""
    return (f'[targets.test]\ndsn = "{db.conninfo}"\n'
            'thresholds = { "locks.blocking" = { min_wait_s = 0 } }\n\n'
            f'[reports]\ndir = "{tmp_path / "reports"}"\n\n'
            f'[history]\nurl = "sqlite:///{tmp_path / "history.sqlite"}"\n')


def blocker_and_waiter(f: Faults, table: str, name: str) -> tuple[int, int, object]:
    """`fault-<name>` holds a row lock, idle in transaction; `fault-<name>-waiter` waits for that row."""
    make_tables(f.conninfo, table)
    blocker = f.session(name, autocommit=False)
    blocker.execute(f"UPDATE {table} SET v = v + 1 WHERE id = 1")
    waiter = f.session(f"{name}-waiter")
    thread = f.in_thread(waiter, f"UPDATE {table} SET v = v + 1 WHERE id = 1")
    f.wait_lock(pid(waiter))
    return pid(blocker), pid(waiter), thread


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OPSBOOK_RUN_RECORD", "OPSBOOK_REPORT_STEM")}
    return subprocess.run([sys.executable, "-m", "opsbook.cli", "--config", str(config), "run", "incident-triage",
                           *args], capture_output=True, text=True, timeout=300,
                          env={**env, "OPSBOOK_NO_SERVICE": "1"}, check=False)


def cli_line(config: Path, *args: str) -> str:
    done = cli(config, *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, (done.returncode, done.stderr)
    return lines[0]


def sidecars(reports: Path) -> list[Path]:
    """The sidecars of runs stepped through in Lab (`opsbook run` writes its own beside them)."""
    return [p for p in sorted(reports.glob("????-??-??/incident-triage--test--*.json"))
            if json.loads(p.read_text()).get("interactive")]


def key(f: dict) -> tuple:
    return f["check"], f["severity"], f["title"]


class Notebook:
    """The working copy open in Lab's page: its cells by index (as in the .ipynb), run and read as a person does."""

    def __init__(self, page, cells: list[dict]):
        self.page, self.cells = page, cells
        self.code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]

    def index_of(self, text: str) -> int:
        return next(i for i in self.code if text in "".join(self.cells[i]["source"]))

    def tagged(self, tag: str) -> int:
        return next(i for i in self.code if tag in self.cells[i]["metadata"].get("tags", []))

    def cell(self, i: int):
        return self.page.locator(".jp-Notebook .jp-Cell").nth(i)

    def prompts(self) -> list[str]:
        return self.page.evaluate("() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')]"
                                  ".map(c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '')")

    def count(self, i: int) -> int | None:
        m = re.search(r"\[(\d+)\]", self.prompts()[i])
        return int(m.group(1)) if m else None

    def wait_ran(self, indices: list[int], after: dict[int, int | None]) -> None:
        """Until each cell shows an execution count newer than it had (a run, not a queued `[*]`)."""
        def done():
            p = self.prompts()
            counts = {i: re.search(r"\[(\d+)\]", p[i]) for i in indices}
            return all(m and (after.get(i) is None or int(m.group(1)) > after[i]) for i, m in counts.items())
        try:
            wait_for(f"cells {indices} to run", done, PAGE_TIMEOUT_MS / 1000)
        except AssertionError as e:
            raise AssertionError(f"{e}: prompts {self.prompts()}") from None

    def output_text(self, i: int) -> str:
        return self.cell(i).locator(".jp-OutputArea").inner_text().strip()

    def select(self, i: int) -> None:
        """Cell i active in command mode (its prompt clicked, as a person selects a cell)."""
        self.cell(i).locator(".jp-InputPrompt").first.click()

    def edit_end(self, i: int) -> None:
        """The cursor at the end of cell i's editor."""
        self.cell(i).locator(".cm-content").click()
        self.page.keyboard.press("Control+End")

    def source(self, i: int) -> str:
        return self.cell(i).locator(".cm-content").inner_text()

    def menu(self, *path: str) -> None:
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(path[0])}$")).click()
        for label in path[1:]:
            self.page.locator(".lm-Menu:visible .lm-Menu-itemLabel",
                              has_text=re.compile(f"^{re.escape(label)}$")).click()


def open_copy(ctx, lab: Lab, relative: str, cells: int):
    page = ctx.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(f"http://127.0.0.1:{lab.port}/lab/tree/{relative}?token={lab.token}", wait_until="load")
    page.wait_for_function(f"() => document.querySelectorAll('.jp-Notebook .jp-Cell').length === {cells}")
    page.wait_for_function(KERNEL_READY, polling=100)  # before Run All: cells sent earlier can be lost
    return page


def kernel_value(lab: Lab, expression: str):
    """`expression` evaluated in the notebook's own kernel (its session's connection file), as JSON."""
    from jupyter_client import BlockingKernelClient

    (session,) = _sessions(lab)
    client = BlockingKernelClient(connection_file=str(lab.runtime / f"kernel-{session['kernel']['id']}.json"))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=DEADLINE_S)
        out: list[str] = []
        reply = client.execute_interactive(f"import json as _j; print(_j.dumps({expression}, default=str))",
                                           timeout=DEADLINE_S, store_history=False,
                                           output_hook=lambda m: out.append(m["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply["content"]
        return json.loads("".join(out).strip().splitlines()[-1])
    finally:
        client.stop_channels()


def _sessions(lab: Lab) -> list[dict]:
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{lab.port}/api/sessions",
                                 headers={"Authorization": f"token {lab.token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def theme_check(page, nb: Notebook, theme: str, verdict: int, folder: Path) -> tuple[list[dict], Path]:
    if page.evaluate("() => document.body.dataset.jpThemeName") != THEMES[theme]:
        nb.menu("Settings", "Theme", THEMES[theme])
    page.wait_for_function(f"() => document.body.dataset.jpThemeName === {THEMES[theme]!r}")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === "
                           f"{'true' if theme == 'light' else 'false'!r}")
    page.evaluate("() => document.fonts.ready")
    nb.cell(verdict).locator(".ob-verdict").first.scroll_into_view_if_needed()
    contrasts = page.evaluate(CONTRASTS)
    shot = folder / f"lab-acceptance-{theme}.png"
    page.screenshot(path=str(shot))
    return contrasts, shot


def test_the_on_call_engineers_notebook_in_a_real_browser(db, tmp_path):
    templates = ROOT / "runbooks"
    before = digests(templates)
    shots = tmp_path / "screenshots"
    shots.mkdir()

    lab = Lab(tmp_path, "incident-triage", "--target", "test")
    lab.env.pop("OPSBOOK_RUNBOOKS")  # the checkout's own runbooks, the tracked templates, are what Lab guards
    lab.runtime = tmp_path / "runtime"
    lab.config.write_text(config_text(db, tmp_path))
    (tmp_path / "cfg").mkdir()  # window.jupyterapp, for KERNEL_READY
    (tmp_path / "cfg" / "jupyter_lab_config.json").write_text(json.dumps({"LabApp": {"expose_app_in_browser": True}}))
    config, reports = lab.config, tmp_path / "reports"

    with Faults(db.conninfo) as f, lab:
        status, answer, _ = lab.call("PUT", f"/lab/api/settings/{DOCMANAGER}",
                                     {"raw": json.dumps({"autosaveInterval": AUTOSAVE_S})})
        assert status == 204, (status, answer)
        status, answer, _ = lab.call("PUT", f"/lab/api/settings/{NOTEBOOK}",
                                     {"raw": json.dumps({"windowingMode": "none", "autoStartDefaultKernel": True})})
        assert status == 204, (status, answer)
        line = re.search(r"^working copy: (.+)$", lab.log_path.read_text(), re.M)
        assert line, lab.log()
        copy = Path(line.group(1))
        relative = copy.relative_to(reports).as_posix()
        cells = json.loads(copy.read_text())["cells"]

        blocker, waiter, waiting = blocker_and_waiter(f, "public.lockme", "report_job")
        with browser() as ctx:
            page = open_copy(ctx, lab, relative, len(cells))
            nb = Notebook(page, cells)
            params, injected = nb.tagged("parameters"), nb.tagged("injected-parameters")
            setup, verdict, remedy = (nb.index_of(s) for s in ("Runbook(", "triage.verdict_html", "confirm_panel("))
            # ------------------------------------------------------------------ Run All, then the button
            nb.menu("Run", "Run All Cells")
            nb.wait_ran(nb.code, {})
            page.wait_for_function("() => document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status "
                                   "=== 'idle'")
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            assert errors.count() == 0, errors.all_inner_texts()
            nb.cell(verdict).locator(".ob-verdict").first.wait_for()

            button = page.get_by_role("button", name=re.compile(rf"^Terminate pid {blocker} \(app fault-report_job, "))
            button.click()
            page.get_by_text(re.compile(rf"Terminate pid {blocker} \(app fault-report_job, .*\?")).wait_for()
            assert alive(db.conninfo, [blocker]) == {blocker}  # the first click only asks
            page.get_by_role("button", name="Yes, terminate").click()
            page.get_by_text(re.compile(rf"terminate pid {blocker}: signal sent: terminated at ")).wait_for()
            f.wait_for("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", (blocker,))
            f.wait_for("SELECT state = 'idle' FROM pg_stat_activity WHERE pid = %s", (waiter,))
            waiting.join(timeout=DEADLINE_S)
            assert not waiting.is_alive() and waiter not in f.errors  # the waiter got its row

            # ------------------------------------------------------------------ past autosave
            # The engineer then types the confirm into the parameters cell (not run): only Lab's autosave
            # writes it, and only into the copy. (Typed after the run has ended: a save in flight while outputs
            # arrive marks the page clean, and Lab saves nothing more until the next change.)
            page.wait_for_function(KERNEL_READY, polling=100)
            typed = [f"terminate_pids = [{blocker}]", "confirm = True"]
            nb.edit_end(params)
            for text in typed:
                page.keyboard.press("Enter")
                page.keyboard.type(text)
            page.keyboard.press("Escape")
            assert nb.source(params).splitlines()[-2:] == typed, nb.source(params)

            def autosaved():  # by Lab alone (nothing here presses Ctrl-S): the copy on disk holds the whole run
                try:  # jupyter_server's "atomic" save rewrites the file in place (a backup beside it): a read can
                    cells = json.loads(copy.read_text())["cells"]  # land mid-write and see it empty or cut
                except ValueError:
                    return False
                return (all(cells[i].get("execution_count") for i in nb.code)
                        and "".join(cells[params]["source"]).splitlines()[-2:] == typed and cells)
            try:
                saved = wait_for("Lab's autosave of the copy", autosaved, PAGE_TIMEOUT_MS / 1000)
            except AssertionError:
                page.screenshot(path=str(tmp_path / "autosave.png"))
                dirty = page.locator(".lm-TabBar-tab.jp-mod-dirty").count()
                raise AssertionError(f"no autosave: dialog {page.locator('.jp-Dialog').all_inner_texts()}, "
                                     f"dirty {dirty}\n{lab.log()}") from None
            wait_for("the page to have nothing unsaved",
                     lambda: page.locator(".lm-TabBar-tab.jp-mod-dirty").count() == 0)
            assert any("ob-verdict" in json.dumps(o) for o in saved[verdict]["outputs"])
            assert digests(templates) == before  # byte for byte: Lab saved the copy, never a template
            # autosave proven: off from here, so no save of Lab's races the checks below (a 1 s autosave under load
            # can make Lab see its own previous save as "File Changed" on disk)
            page.evaluate("window.jupyterapp.commands.execute('docmanager:toggle-autosave')")

            # ------------------------------------------------------------------ the run's one sidecar
            (record_path,) = sidecars(reports)
            record = json.loads(record_path.read_text())
            own = kernel_value(lab, "[f.to_dict() for f in rb.findings]")
            assert sorted(map(key, record["findings"])) == sorted(map(key, own))
            assert len(record["findings"]) == len(own)
            assert record["status"] == "ok" and record["interactive"] is True and record["target"] == "test"
            (done,) = record["remediation"]
            assert done["objects"] == [f"pid {blocker}"] and done["value"] is True
            assert done["title"].startswith(f"terminate pid {blocker}: signal sent: terminated at ")
            assert [f for f in record["findings"] if f["check"] == "remediation.backends"] == \
                [{k: v for k, v in done.items() if k != "at"}]
            assert record["metrics"]["backends_terminated"] == 1

            # ------------------------------------------------------------------ a following `opsbook run`
            other, other_waiter, _ = blocker_and_waiter(f, "public.lockme2", "other_job")
            ran = cli(config, "--target", "test", "--json")
            assert ran.returncode in (0, 1, 3), ran.stderr
            result = json.loads(ran.stdout)
            assert alive(db.conninfo, [waiter, other, other_waiter]) == {waiter, other, other_waiter}
            assert db.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                              (other_waiter,)) == [("Lock",)]
            assert f"pid {other}" in ran.stdout  # it saw the live blocker, and left it alone
            assert result.get("metrics", {}).get("backends_terminated", 0) == 0, result.get("metrics")

            # ------------------------------------------------------------------ the Remediation cell again, alone
            was = nb.count(remedy)
            nb.select(remedy)
            page.keyboard.press("Control+Enter")
            nb.wait_ran([remedy], {remedy: was})
            out = nb.output_text(remedy)
            assert "ResourceClosedError" not in out and "Error" not in out, out
            assert nb.cell(remedy).locator(".jp-OutputArea-output[data-mime-type="
                                           "'application/vnd.jupyter.stderr']").count() == 0
            assert f"pid {blocker} is no longer connected to this database: nothing to do." in out, out
            assert len(json.loads(record_path.read_text())["remediation"]) == 1  # recorded once, still
            assert sidecars(reports) == [record_path]

            # ------------------------------------------------------------------ light and dark
            measured = {}
            for theme in ("light", "dark"):
                measured[theme] = theme_check(page, nb, theme, verdict, shots)
            if os.environ.get("OPSBOOK_SCREENSHOTS"):
                keep = Path(os.environ["OPSBOOK_SCREENSHOTS"])
                keep.mkdir(parents=True, exist_ok=True)
                for _, shot in measured.values():
                    shutil.copy2(shot, keep / shot.name)
            for theme, (contrasts, shot) in measured.items():
                assert shot.stat().st_size > 0
                kinds = {m["sel"] for m in contrasts}
                assert {".ob-verdict", ".ob-table th"} <= kinds, (theme, kinds)
                poor = [m for m in contrasts if m["sel"] in (".ob-verdict", ".ob-verdict b", ".ob-table th")
                        and m["ratio"] < MIN_CONTRAST]
                assert not poor, (theme, poor)

            # ------------------------------------------------------------------ bad values, typed
            nb.edit_end(params)  # the confirm typed above, removed again (never run)
            for _ in typed:
                page.keyboard.press("Shift+Home")
                page.keyboard.press("Backspace")
                page.keyboard.press("Backspace")
            page.keyboard.press("Escape")
            original = {i: nb.source(i) for i in (params, injected)}
            assert original[params] == "".join(cells[params]["source"]), original[params]
            for typed, args in BAD:
                where = injected if typed.startswith("target") else params  # the copy's own cell sets the target
                expected = cli_line(config, *(["--target", "test"] if args[0] == "-p" else []), *args)
                nb.edit_end(where)
                page.keyboard.press("Enter")
                page.keyboard.type(typed)
                page.keyboard.press("Escape")
                # Lab's editor may close a quote it opened: the line must read as typed
                assert nb.source(where).splitlines()[-1] == typed, nb.source(where)
                counts = {i: nb.count(i) for i in (params, injected, setup)}
                nb.select(params)
                for _ in (params, injected, setup):
                    page.keyboard.press("Shift+Enter")
                nb.wait_ran([params, injected, setup], counts)
                assert nb.output_text(setup) == expected, (typed, nb.output_text(setup), expected)
                nb.edit_end(where)  # the line removed again: the cell as the copy had it
                page.keyboard.press("Shift+Home")
                page.keyboard.press("Backspace")
                page.keyboard.press("Backspace")
                page.keyboard.press("Escape")
                assert nb.source(where) == original[where]
            page.close()
        assert digests(templates) == before
