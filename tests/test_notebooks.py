"""Every runbook as JupyterLab would run it (nbval --nbval-lax), and committed without outputs."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

RUNBOOKS = sorted((ROOT / "runbooks").glob("*.ipynb"))
assert RUNBOOKS, "no runbooks found: every test below would be silently empty"


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_with_a_purpose(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, path.name
    assert nb["metadata"]["opsbook"]["purpose"], "opsbook list shows metadata.opsbook.purpose"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"


@pytest.mark.slow
def test_every_runbook_executes_under_nbval(demo_database, tmp_path):
    """The notebooks run top to bottom against the demo target with their defaults, as in JupyterLab; what a
    runbook writes beside its report goes to a temporary folder, never into the checkout's runbooks/."""
    before = set(RUNBOOKS[0].parent.iterdir())
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", "--no-header",
         *map(str, RUNBOOKS)],
        cwd=ROOT, env={**os.environ, "OPSBOOK_REPORT_STEM": str(tmp_path / "nbval-report")},
        capture_output=True, text=True, timeout=1200)
    assert set(RUNBOOKS[0].parent.iterdir()) == before
    tail = out.stdout[-4000:] + out.stderr[-2000:]
    assert out.returncode == 0, tail
    passed = re.search(r"(\d+) passed", out.stdout)
    code_cells = sum(1 for p in RUNBOOKS for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code")
    assert passed and int(passed.group(1)) == code_cells, tail
