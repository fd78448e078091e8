"""The service's fallback folder (`$TMPDIR/opsbook-<uid>-<digest>`, used when the home's path is too long for a
socket): another local user can make it first; opsbook then refuses in one line and trusts nothing in it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import unprivileged_home

OPSBOOK = str(Path(sys.executable).parent / "opsbook")


@pytest.fixture
def fallback(tmp_path):
    """(environment, the fallback folder) for an opsbook home whose socket path is too long, with the temporary
    directory a sticky, world-writable folder under tmp_path, as /tmp is."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    home = tmp_path / ("h" * 110)
    env = {**os.environ, "OPSBOOK_HOME": str(home), "TMPDIR": str(tmp)}
    env.pop("OPSBOOK_SERVICE_SOCKET", None)
    out = subprocess.run([sys.executable, "-c", "from opsbook.run.serve import wire; print(wire.socket_path())"],
                         env=env, capture_output=True, text=True, check=True)
    folder = Path(out.stdout.strip()).parent
    assert folder.parent == tmp and folder.name.startswith(f"opsbook-{os.getuid()}-"), folder  # control
    return env, folder


def make(kind: str, folder: Path, tmp_path: Path) -> None:
    """Put in the fallback folder's place what an attacker (or an accident) would."""
    if kind in ("another user's", "another user's, open to all"):
        pw, _ = unprivileged_home(tmp_path)
        folder.mkdir(mode=0o700)
        folder.chmod(0o700 if kind == "another user's" else 0o777)
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    elif kind == "ours, open to others":
        folder.mkdir()
        folder.chmod(0o755)
    elif kind == "a symlink to a private folder of ours":
        (tmp_path / "mine").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "mine")
    elif kind == "a dangling symlink":
        folder.symlink_to(tmp_path / "nothing-here")
    elif kind == "a file":
        folder.write_text("")


KINDS = ["another user's", "another user's, open to all", "ours, open to others",
         "a symlink to a private folder of ours", "a dangling symlink", "a file"]


@pytest.mark.parametrize("kind", KINDS)
def test_serve_start_refuses_a_fallback_folder_it_cannot_trust_in_one_line(fallback, tmp_path, kind):
    if kind.startswith("another user's") and os.geteuid() != 0:
        pytest.skip("making a folder another user's takes root")
    env, folder = fallback
    make(kind, folder, tmp_path)
    before = sorted(p.name for p in (tmp_path / "mine").iterdir()) if (tmp_path / "mine").exists() else None
    out = subprocess.run([OPSBOOK, "serve", "start", "--idle", "5"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("opsbook: error: ") and str(folder) in line and "OPSBOOK_SERVICE_SOCKET" in line, line
    assert out.stdout == ""
    if before is not None:  # nothing written through the link
        assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == before == []
    if folder.is_dir() and not folder.is_symlink():
        assert list(folder.iterdir()) == [], "no log, no pid file, no socket in a folder we do not trust"


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder another user's takes root")
def test_serve_stop_does_not_take_a_pid_from_a_folder_another_user_made(fallback, tmp_path):
    """A pid file planted in the fallback folder must not make `serve stop` signal a process of ours."""
    env, folder = fallback
    make("another user's, open to all", folder, tmp_path)
    # a process of ours that looks like a service (another home's, a Dask worker's)
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "opsbook.run.serve"])
    try:
        (folder / "service.pid").write_text(f"{victim.pid}\n")
        out = subprocess.run([OPSBOOK, "serve", "stop"], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "no opsbook service was running" in out.stdout, out.stdout + out.stderr
        assert victim.poll() is None, "serve stop signalled a process named by another user's file"
        status = subprocess.run([OPSBOOK, "serve", "status"], env=env, capture_output=True, text=True, timeout=120)
        assert status.returncode == 1 and "no opsbook service is running" in status.stdout, status.stderr
    finally:
        victim.kill()
        victim.wait()


def test_a_fresh_fallback_folder_is_ours_and_private_whatever_the_umask(tmp_path):
    from opsbook.run.serve import wire

    folder = tmp_path / "opsbook-x"
    old = os.umask(0)
    try:
        assert wire.private_folder(folder) == folder
    finally:
        os.umask(old)
    st = folder.lstat()
    assert st.st_uid == os.getuid() and st.st_mode & 0o7777 == 0o700
    assert wire.private_folder(folder) == folder  # and it is taken as it is next time
