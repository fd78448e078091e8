"""A runbook stepped through cell by cell in a real kernel, as JupyterLab runs it: no papermill, no runner."""
from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Iterator

import nbformat
import psycopg
from nbclient import NotebookClient

from conftest import ROOT

RUNBOOKS = ROOT / "runbooks"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def config_file(tmp_path: Path, db) -> Path:
    """An opsbook.toml whose target `test` is the given database, reports and history store in tmp_path."""
    path = tmp_path / "opsbook.toml"
    path.write_text(f'[targets.test]\ndsn = "{db.conninfo}"\n\n[reports]\ndir = "{tmp_path / "reports"}"\n\n'
                    f'[history]\nurl = "sqlite:///{tmp_path / "history.sqlite"}"\n')
    return path


@contextlib.contextmanager
def lock_holder(db) -> Iterator[int]:
    """A session idle in transaction holding an exclusive lock on a new table public.t: its pid, closed after."""
    blocker = psycopg.connect(db.conninfo)
    try:
        blocker.execute("CREATE TABLE public.t (id int)")
        blocker.commit()
        blocker.execute("LOCK TABLE public.t IN ACCESS EXCLUSIVE MODE")
        yield blocker.info.backend_pid
    finally:
        blocker.close()


class LabKernel:
    """One notebook's cells, run in the order a person chooses; `params` replaces the parameters cell's lines."""

    def __init__(self, client: NotebookClient, nb):
        self.client, self.nb = client, nb
        self.code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        self.params_index = next(i for i in self.code if "parameters" in nb.cells[i].metadata.get("tags", []))
        self.template = nb.cells[self.params_index].source

    def set_params(self, **values) -> None:
        """Edit the parameters cell as a person would (the line of each name replaced) and run it."""
        lines = self.template.splitlines()
        for name, value in values.items():
            at = next(i for i, line in enumerate(lines) if line.startswith(f"{name}:"))
            lines[at] = f"{name} = {value!r}"
        self.nb.cells[self.params_index].source = "\n".join(lines)
        self.run(self.params_index)

    def run(self, index: int) -> list[dict]:
        cell = self.nb.cells[index]
        cell.outputs = []
        self.client.execute_cell(cell, index)
        return cell.outputs

    def source(self, text: str) -> list[dict]:
        """Run a cell of our own (a probe) after the notebook's."""
        cell = nbformat.v4.new_code_cell(text)
        self.nb.cells.append(cell)
        return self.run(len(self.nb.cells) - 1)

    def index_of(self, text: str) -> int:
        """The code cell whose source contains `text`."""
        return next(i for i in self.code if text in self.nb.cells[i].source)


def errors(outputs: list[dict]) -> list[dict]:
    return [o for o in outputs if o.get("output_type") == "error"]


def traceback_lines(error: dict) -> list[str]:
    return [ANSI.sub("", line) for line in "\n".join(error["traceback"]).splitlines()]


def text(outputs: list[dict]) -> str:
    out = []
    for o in outputs:
        if o.get("output_type") == "stream":
            out.append(o["text"])
        elif "data" in o:
            out.append(o["data"].get("text/html") or o["data"].get("text/plain", ""))
    return "".join(out)


@contextlib.contextmanager
def lab_kernel(runbook: str, config: Path, monkeypatch) -> Iterator[LabKernel]:
    """A kernel started in runbooks/ with the environment JupyterLab gives it (OPSBOOK_CONFIG from `opsbook lab`,
    the session's notebook path); errors are kept as outputs, as Lab shows them."""
    path = RUNBOOKS / f"{runbook}.ipynb"
    monkeypatch.setenv("OPSBOOK_CONFIG", str(config))
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    monkeypatch.delenv("OPSBOOK_REPORT_STEM", raising=False)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=180, startup_timeout=180, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(RUNBOOKS)}})
    with client.setup_kernel():
        yield LabKernel(client, nb)
