"""Where things live: the configuration decides, never the current folder; a notebook in Lab sees what `run` sees."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from opsbook.config import paths
from opsbook.config.file import from_dict, load
from opsbook.run.runner import _config_file, runbook_names, runbooks_dir

PROBE = """
import json
from opsbook.config.file import load
from opsbook.history import open_store
_c = load()
_s = open_store(_c, create=False)
print(json.dumps({"config": str(_c.path) if _c.path else None, "history_url": _c.history_url,
                  "reports_dir": str(_c.reports_dir), "snapshots": len(_s.snapshots("demo")) if _s else 0,
                  "target": target}))
"""


def where(config) -> dict:
    return {"history_url": config.history_url, "reports_dir": str(config.reports_dir)}


def test_relative_paths_in_a_file_resolve_against_its_folder(tmp_path, monkeypatch):
    conf = tmp_path / "etc" / "opsbook.toml"
    conf.parent.mkdir()
    (conf.parent / "state").mkdir()
    conf.write_text('[history]\nurl = "sqlite:///state/h.sqlite"\n[reports]\ndir = "out"\n'
                    '[targets.prod]\ndsn = "host=h"\nbackups = "dumps"\n[pricing]\nfile = "prices.toml"\n')
    seen = []
    for cwd in (tmp_path, conf.parent, Path("/")):
        monkeypatch.chdir(cwd)
        c = load(os.path.relpath(conf, cwd) if cwd != Path("/") else conf)
        seen.append((c.history_url, c.reports_dir, c.target("prod").extra["backups"]))
    assert seen == [(f"sqlite:///{conf.parent / 'state/h.sqlite'}", conf.parent / "out",
                     str(conf.parent / "dumps"))] * 3
    portable = load(conf).portable_raw()  # what a kernel gets, written elsewhere: the same, absolute
    assert portable["pricing"]["file"] == str(conf.parent / "prices.toml")
    assert portable["targets"]["prod"]["backups"] == str(conf.parent / "dumps")


def test_builtin_configuration_lives_in_opsbook_home_or_the_checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSBOOK_HOME", str(tmp_path / "home"))
    for cwd in (tmp_path, Path("/")):
        monkeypatch.chdir(cwd)
        assert load().reports_dir == tmp_path / "home" / "reports"
        assert load().history_url == f"sqlite:///{tmp_path / 'home' / 'reports' / 'history.sqlite'}"
    monkeypatch.delenv("OPSBOOK_HOME")
    checkout = paths.project_checkout()
    assert checkout is not None and (checkout / "runbooks").is_dir()
    assert from_dict({}).reports_dir == checkout / "reports"


@pytest.mark.slow
def test_a_run_from_the_root_folder_writes_where_the_configuration_says(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "OPSBOOK_HOME": str(home),
           "OPSBOOK_RUNBOOKS": str(Path(__file__).parent / "fixtures" / "runbooks")}
    env.pop("OPSBOOK_CONFIG", None)
    p = subprocess.run([sys.executable, "-m", "opsbook.cli", "run", "empty"], cwd="/", env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    report = Path(p.stdout.strip())
    assert report.is_file() and report.is_relative_to(home / "reports"), report
    assert not Path("/reports").exists()


def run_like_lab(notebooks: list[Path], env: dict) -> list[dict]:
    """Each runbook's own parameters cell, then a probe, in a kernel started in runbooks/ with no papermill and no
    OPSBOOK_CONFIG: what a person stepping through it in JupyterLab gets (one kernel for all: kernels are slow)."""
    cells = []
    for notebook in notebooks:
        nb = nbformat.read(notebook, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        cells += [nbformat.v4.new_code_cell(cell.source), nbformat.v4.new_code_cell(PROBE)]
    probe = nbformat.v4.new_notebook(cells=cells)
    saved = {k: os.environ.get(k) for k in [*env, "OPSBOOK_CONFIG"]}
    os.environ.update(env)
    os.environ.pop("OPSBOOK_CONFIG", None)
    try:
        NotebookClient(probe, timeout=120, startup_timeout=180, kernel_name="python3",
                       resources={"metadata": {"path": str(notebooks[0].parent)}}).execute()
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    seen = []
    for cell in probe.cells[1::2]:
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
        assert text, cell.outputs
        seen.append(json.loads(text))
    return seen


def test_every_runbook_stepped_through_in_lab_sees_the_same_config_history_and_reports(tmp_path, monkeypatch):
    from opsbook.history import store as st
    from opsbook.history.readers import HistoryStore

    home = tmp_path / "home"
    monkeypatch.setenv("OPSBOOK_HOME", str(home))
    monkeypatch.chdir("/")  # `opsbook run` from anywhere: cron, another folder, the root
    config = load()
    store = HistoryStore(config.history_url)  # one snapshot of demo, as `opsbook snapshot` would leave
    st.write_snapshot(store.engine, {"target": "demo", "ts": 1.0, "captured_at": 1.0, "simulated": False},
                      {"metric": []})
    store.close()
    handed = load(_config_file(config, tmp_path))  # what `opsbook run` hands to its kernel
    assert where(handed) == where(config)
    names = runbook_names()
    assert {"incident-triage", "capacity-planning", "cost-analysis", "backup-verification",
            "table-recovery"} <= set(names)
    seen = run_like_lab([runbooks_dir() / f"{name}.ipynb" for name in names], {"OPSBOOK_HOME": str(home)})
    for name, got in zip(names, seen):
        assert got["config"] is None and got["target"] == "demo", (name, got)
        assert {k: got[k] for k in ("history_url", "reports_dir")} == where(config), name
        assert got["snapshots"] == 1, (name, got)


@pytest.mark.parametrize("cwd_name", ["runbooks", "elsewhere"])
def test_the_checkouts_opsbook_toml_is_found_from_runbooks(tmp_path, monkeypatch, cwd_name):
    """A kernel in runbooks/ finds the opsbook.toml at the top of the checkout, as `opsbook` does from there."""
    fake = tmp_path / "checkout"
    (fake / "runbooks").mkdir(parents=True)
    (fake / "opsbook.toml").write_text('[targets.prod]\ndsn = "host=h"\n')
    monkeypatch.setattr(paths, "project_checkout", lambda: fake)
    monkeypatch.delenv("OPSBOOK_HOME")
    cwd = fake / "runbooks" if cwd_name == "runbooks" else tmp_path
    monkeypatch.chdir(cwd)
    assert load().path == fake / "opsbook.toml" and "prod" in load().targets


def test_with_opsbook_home_set_the_checkouts_opsbook_toml_is_not_read(tmp_path, monkeypatch):
    """$OPSBOOK_HOME stands for the checkout (as for reports/ and history): the test suite, which sets it, never
    reads the user's own opsbook.toml at the top of the checkout; the home's own file is read instead."""
    fake = tmp_path / "checkout"
    (fake / "runbooks").mkdir(parents=True)
    (fake / "opsbook.toml").write_text('[targets.users_own]\ndsn = "host=h"\n')
    monkeypatch.setattr(paths, "project_checkout", lambda: fake)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("OPSBOOK_HOME", str(home))
    monkeypatch.chdir(fake / "runbooks")
    assert load().path is None and "users_own" not in load().targets
    (home / "opsbook.toml").write_text('[targets.homes]\ndsn = "host=h"\n')
    assert load().path == home / "opsbook.toml" and "homes" in load().targets
