"""`opsbook lab RUNBOOK` works on a dated, parameterized copy in the reports folder, never on the template: the
Lab it starts refuses to save over a template, ships its own settings (no news pop-up), and bad parameters stop
it before anything starts. The `opsbook` kernelspec and the pre-commit check of the templates."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, free_port
from report_browser import CHROMIUM, browser
from test_lab_signal import DEADLINE_S, ours, serving, wait_for

NOTIFICATION = "@jupyterlab/apputils-extension:notification"


class Lab:
    """`opsbook --config ... lab ARGS --no-browser` started as a process on a free port, with its own Jupyter
    folders and a copy of the runbooks (the tests never write into the checkout's runbooks/)."""

    def __init__(self, tmp_path: Path, *args: str):
        self.mark, self.token, self.port = uuid.uuid4().hex, uuid.uuid4().hex, free_port()
        self.runbooks = tmp_path / "runbooks"
        shutil.copytree(ROOT / "runbooks", self.runbooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        self.config = tmp_path / "opsbook.toml"
        self.config.write_text('[reports]\ndir = "reports"\n')
        self.reports = tmp_path / "reports"
        self.settings = tmp_path / "cfg" / "lab" / "user-settings"
        self.env = {**os.environ, "OPSBOOK_LAB_TEST": self.mark, "JUPYTER_PORT": str(self.port),
                    "JUPYTER_PORT_RETRIES": "0", "JUPYTER_TOKEN": self.token,
                    "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
                    "JUPYTER_DATA_DIR": str(tmp_path / "data"), "OPSBOOK_RUNBOOKS": str(self.runbooks)}
        self.env.pop("JUPYTER_CONFIG_PATH", None)
        self.log_path = tmp_path / "lab.log"
        self.args = args
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "opsbook.cli", "--config", str(self.config), "lab", *self.args, "--no-browser"]

    def __enter__(self) -> Lab:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.command(), env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        wait_for("JupyterLab to serve", lambda: self.proc.poll() is None and serving(self.port, self.token))
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                assert self.proc.wait(timeout=DEADLINE_S) == 143, self.log()
            wait_for("every process it started to be gone", lambda: not ours(self.mark), 30)
        finally:
            for pid in ours(self.mark):  # only what this test started, by pid
                os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def call(self, method: str, path: str, body: dict | None = None, follow: bool = True) -> tuple[int, dict, dict]:
        """(status, JSON answer, headers) of one request with the server's token."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"},
                                     data=None if body is None else json.dumps(body).encode())
        opener = urllib.request.build_opener(*([] if follow else [NoRedirect()]))
        try:
            with opener.open(req, timeout=30) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw.strip().startswith(b"{") else {}, dict(r.headers)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw.strip().startswith(b"{") else {}, dict(e.headers)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def notebook_model(path: Path, extra_markdown: str) -> dict:
    nb = json.loads(path.read_text())
    nb["cells"].append({"cell_type": "markdown", "id": uuid.uuid4().hex[:8], "metadata": {},
                        "source": extra_markdown})
    return {"type": "notebook", "format": "json", "content": nb}


def test_lab_on_a_runbook_opens_a_parameterized_working_copy_that_saves(tmp_path):
    from papermill.translators import translate_parameters

    with Lab(tmp_path, "incident-triage", "--target", "demo", "-p", "top_statements=30",
             "-p", "terminate_pids=4711") as lab:
        line = re.search(r"^working copy: (.+)$", lab.log_path.read_text(), re.M)
        assert line, lab.log()
        copy = Path(line.group(1))
        relative = copy.relative_to(lab.reports).as_posix()
        assert re.fullmatch(r"lab/\d{4}-\d{2}-\d{2}/incident-triage--demo--\d{6}Z\.ipynb", relative), relative
        assert sorted(p.relative_to(lab.reports).as_posix() for p in lab.reports.rglob("*.ipynb")) == [relative]

        cells = json.loads(copy.read_text())["cells"]
        tags = [c["metadata"].get("tags", []) for c in cells]
        at = tags.index(["parameters"])
        assert tags[at + 1] == ["injected-parameters"] and sum("injected-parameters" in t for t in tags) == 1
        # the cell `opsbook run` injects: papermill's own, the target first, values as checked (ints, a list)
        expected = translate_parameters("python3", "python",
                                        {"target": "demo", "top_statements": 30, "terminate_pids": [4711]},
                                        "Parameters")
        assert "".join(cells[at + 1]["source"]) == expected
        template = lab.runbooks / "incident-triage.ipynb"
        assert [c["source"] for i, c in enumerate(cells) if i != at + 1] == \
            [c["source"] for c in json.loads(template.read_text())["cells"]]

        status, _, headers = lab.call("GET", "/", follow=False)  # the browser opens on the copy
        assert status == 302 and headers["Location"].startswith(f"/lab/tree/{relative}"), headers

        before = template.read_bytes()
        status, answer, _ = lab.call("PUT", f"/api/contents/{relative}", notebook_model(copy, "notes of the on-call"))
        assert status == 200 and answer["writable"] is True, answer
        assert "notes of the on-call" in copy.read_text()
        assert template.read_bytes() == before


def test_lab_refuses_to_save_over_a_template_and_opens_it_read_only(tmp_path):
    with Lab(tmp_path) as lab:
        template = lab.runbooks / "incident-triage.ipynb"
        before, names = template.read_bytes(), sorted(p.name for p in lab.runbooks.iterdir())
        edited = notebook_model(template, "confirm = True")
        status, answer, _ = lab.call("PUT", "/api/contents/incident-triage.ipynb", edited)
        assert status == 403, (status, answer)
        assert answer["message"] == ("runbooks/incident-triage.ipynb is a template (not saved from `opsbook lab`): "
                                     "open a working copy with `opsbook lab incident-triage --target T`")
        status, model, _ = lab.call("GET", "/api/contents/incident-triage.ipynb")
        assert status == 200 and model["writable"] is False and model["content"]["cells"]  # opens, read-only
        listing = lab.call("GET", "/api/contents/")[1]["content"]
        assert {c["name"]: c["writable"] for c in listing if c["type"] == "notebook"}["incident-triage.ipynb"] is False
        for method, path, body in [("PUT", "/api/contents/scratch.ipynb", edited),  # a new notebook among them
                                   ("PATCH", "/api/contents/incident-triage.ipynb", {"path": "moved.ipynb"}),
                                   ("PATCH", "/api/contents/cost-analysis.ipynb", {"path": "incident-triage.ipynb"}),
                                   ("DELETE", "/api/contents/incident-triage.ipynb", None)]:
            status, answer, _ = lab.call(method, path, body)
            assert status == 403, (method, path, status, answer)
        assert template.read_bytes() == before
        assert sorted(p.name for p in lab.runbooks.iterdir()) == names

        status, answer, _ = lab.call("PUT", "/api/contents/notes.md", {"type": "file", "format": "text",
                                                                      "content": "not a notebook"})
        assert status == 201, answer  # only notebooks are guarded


@pytest.mark.skipif(not CHROMIUM, reason="needs chromium")
def test_in_the_browser_a_template_is_read_only_and_ctrl_s_says_so(tmp_path):
    """Lab itself (headless Chromium) opens the template read-only: an edit stays in the page, Ctrl-S says the
    file is read-only and writes nothing."""
    with Lab(tmp_path) as lab:
        template = lab.runbooks / "incident-triage.ipynb"
        before = template.read_bytes()
        with browser() as ctx:
            page = ctx.new_page()
            page.set_default_timeout(DEADLINE_S * 1000)
            page.goto(f"http://127.0.0.1:{lab.port}/lab/tree/incident-triage.ipynb?token={lab.token}")
            editor = page.locator(".jp-Notebook .jp-Cell .cm-content").nth(1)  # the parameters cell
            editor.click()
            page.keyboard.press("End")
            page.keyboard.type("\nconfirm = True")
            page.keyboard.press("Control+s")
            page.get_by_text('incident-triage.ipynb is read-only. Use "Save as…" instead.').wait_for()
        assert template.read_bytes() == before


def test_the_lab_settings_turn_the_news_off_and_keep_the_users_own(tmp_path):
    lab = Lab(tmp_path)
    own = lab.settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    own.parent.mkdir(parents=True)
    own.write_text('{"doNotDisturbMode": true}')
    with lab:
        status, answer, _ = lab.call("GET", f"/lab/api/settings/{NOTIFICATION}")
    assert status == 200
    defaults = {k: v.get("default") for k, v in answer["schema"]["properties"].items()}
    assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False  # no news pop-up, no update check
    assert answer["settings"] == {"doNotDisturbMode": True}  # the user's own setting still applies


@pytest.mark.parametrize("args, message", [
    (["-p", "top_statements=-5"], "parameter 'top_statements' must be in [1, 1000], got -5"),
    (["-p", "top_statements=twenty"], "parameter 'top_statements' expects int, got 'twenty'"),
    (["--target", "nope"], "target 'nope' not found in the configuration; known: demo"),
    (["-p", "target=prod"], "the target is not a parameter here: use --target NAME"),
])
def test_bad_parameters_exit_2_with_one_line_and_start_nothing(tmp_path, args, message):
    lab = Lab(tmp_path, "incident-triage", *args)
    done = subprocess.run(lab.command(), env=lab.env, capture_output=True, text=True, timeout=DEADLINE_S)
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stdout, done.stderr)
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(f"opsbook: error: {message}"), done.stderr
    assert not ours(lab.mark) and not serving(lab.port, lab.token)  # no Jupyter started
    assert not lab.reports.exists() or not any(lab.reports.rglob("*.ipynb"))  # and no copy written


def test_the_opsbook_kernelspec_starts_this_python_with_nothing_secret(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    from opsbook.cli.main import main
    from opsbook.run.kernelspec import install_kernelspec

    monkeypatch.setenv("PGPASSWORD", "s3cret-from-the-shell")
    plain = install_kernelspec(prefix=tmp_path / "plain")
    assert plain == tmp_path / "plain" / "share" / "jupyter" / "kernels" / "opsbook"
    assert "env" not in json.loads((plain / "kernel.json").read_text())

    (tmp_path / "opsbook.toml").write_text("")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))  # `opsbook lab --install-kernel` installs there
    result = CliRunner().invoke(main, ["--config", "opsbook.toml", "lab", "--install-kernel"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "venv" / "share" / "jupyter" / "kernels" / "opsbook"
    assert result.output.strip() == str(folder)
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["env"] == {"OPSBOOK_CONFIG": str(tmp_path / "opsbook.toml")}
    assert spec["argv"] == [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f",
                            "{connection_file}", "--HistoryManager.enabled=False"]
    assert "s3cret" not in (folder / "kernel.json").read_text()

    specs = KernelSpecManager(kernel_dirs=[str(folder.parent)])
    km = KernelManager(kernel_name="opsbook", kernel_spec_manager=specs)
    km.start_kernel(cwd=str(tmp_path))
    try:
        client = km.client()
        client.start_channels()
        client.wait_for_ready(timeout=DEADLINE_S)
        out: list[str] = []
        reply = client.execute_interactive(
            "import os, sys, opsbook; print(sys.executable, os.environ['OPSBOOK_CONFIG'], opsbook.__version__)",
            timeout=DEADLINE_S, output_hook=lambda m: out.append(m["content"].get("text", "")))
        client.stop_channels()
        assert reply["content"]["status"] == "ok", reply["content"]
        import opsbook

        assert "".join(out).split() == [sys.executable, str(tmp_path / "opsbook.toml"), opsbook.__version__]
    finally:
        km.shutdown_kernel(now=True)


# ---------------------------------------------------------------------------------------------- the commit check
def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=repo,
                          env=env, capture_output=True, text=True, check=check, timeout=60)


def test_the_pre_commit_hook_refuses_a_runbook_with_outputs_or_parameters(tmp_path):
    from opsbook.run.templatecheck import problems

    repo = tmp_path / "repo"
    (repo / "runbooks").mkdir(parents=True)
    git(repo, "init", "-q")
    git(repo, "config", "core.hooksPath", str(ROOT / ".githooks"))
    template = json.loads((ROOT / "runbooks" / "incident-triage.ipynb").read_text())
    target = repo / "runbooks" / "incident-triage.ipynb"
    target.write_text(json.dumps(template))
    git(repo, "add", "-A")
    assert git(repo, "commit", "-q", "-m", "clean").returncode == 0

    code = next(c for c in template["cells"]
                if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", []))
    code["execution_count"] = 7
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "terminated 4711\n"}]
    injected = {"cell_type": "code", "id": "injected", "metadata": {"tags": ["injected-parameters"]},
                "execution_count": None, "outputs": [], "source": "confirm = True\nterminate_pids = [4711]\n"}
    template["cells"].insert(2, injected)
    target.write_text(json.dumps(template))
    git(repo, "add", "-A")
    clean = (ROOT / "runbooks" / "incident-triage.ipynb").read_text()
    target.write_text(clean)  # clean on disk, not in the index: the hook reads what is staged
    refused = git(repo, "commit", "-q", "-m", "edited in Lab", check=False)
    assert refused.returncode == 1, refused
    lines = refused.stderr.splitlines()
    assert any("runbooks/incident-triage.ipynb: cell 3 is papermill's injected-parameters cell" in ln for ln in lines)
    assert any("has 1 output(s)" in ln for ln in lines) and any("has execution count 7" in ln for ln in lines)
    assert git(repo, "rev-list", "--count", "HEAD").stdout.strip() == "1"  # nothing committed

    for path in sorted((ROOT / "runbooks").glob("*.ipynb")):  # the templates as they are: clean
        assert problems(path.read_text(), path.name) == []


def test_the_lab_settings_reach_only_the_lab_opsbook_starts(monkeypatch, tmp_path):
    from opsbook.run.lab import SETTINGS_DIR, lab_command

    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(tmp_path / "site-config"))
    cmd, env = lab_command(None, no_browser=True)
    assert env["JUPYTER_CONFIG_PATH"] == os.pathsep.join([str(SETTINGS_DIR), str(tmp_path / "site-config")])
    assert os.environ["JUPYTER_CONFIG_PATH"] == str(tmp_path / "site-config")  # this process is left as it was
    overrides = json.loads((SETTINGS_DIR / "labconfig" / "default_setting_overrides.json").read_text())
    assert overrides == {NOTIFICATION: {"fetchNews": "false", "checkForUpdates": False}}
    assert "--ServerApp.contents_manager_class=opsbook.run.labcontents.TemplateGuard" in cmd
