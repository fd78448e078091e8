"""The suite is the suite's, whatever the caller has set: a user's OPSBOOK_CONFIG, service socket or libpq
defaults never reach a test (tests/conftest.py drops them)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_users_opsbook_and_libpq_environment_does_not_reach_the_tests(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('[targets.prod]\ndsn = "host=db.invalid dbname=app"\n[reports]\ndir = "%s"\n' % (tmp_path / "r"))
    env = {**os.environ, "OPSBOOK_CONFIG": str(mine), "OPSBOOK_RUNBOOKS": str(tmp_path),
           "PYTHONPATH": str(ROOT / "tests"),
           "PGOPTIONS": "-c statement_timeout=1", "PGSERVICE": "nonexistent-service"}
    env.pop("OPSBOOK_TEST_HOME", None)  # the inner pytest makes its own home
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "import os\n"
        "from opsbook.config.file import load\n"
        "from opsbook.config.paths import runbooks_dir\n"
        "def test_probe(db):\n"
        "    assert set(load().targets) == {'demo'}\n"
        "    assert runbooks_dir().name == 'runbooks'\n"
        "    assert 'PGOPTIONS' not in os.environ and 'PGSERVICE' not in os.environ\n"
        "    assert db.execute('SELECT 1') is not None\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                          "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), str(probe)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert not (tmp_path / "r").exists(), "nothing was written where the user's configuration points"
