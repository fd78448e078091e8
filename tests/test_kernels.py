"""Warm kernels, run_many, signals during a run, and the import-time work kept out of opsbook's processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from opsbook.config.file import from_dict
from opsbook.core.errors import UnknownTarget
from opsbook.run.kernels import KernelPool
from opsbook.run.kernels.many import Job, run_many
from opsbook.run.kernels.warm import KernelError
from report_checks import assert_report_files

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
BIN = Path(sys.executable).parent
GRAMMAR = "rfc3987_syntax.syntax_helpers"


def notebook(folder: Path, name: str, *cells: str) -> Path:
    """A runbook of a parameters cell (`target`) and the given code cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.opsbook = {"purpose": f"test notebook {name}"}
    params = nbformat.v4.new_code_cell('target: str = "demo"')
    params.metadata.tags = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in cells)]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")
    return folder / f"{name}.ipynb"


def test_the_iri_grammar_is_not_built_by_the_cli_yet_still_works_when_used():
    pytest.importorskip("rfc3987_syntax")  # installed with the lab extra, as by `make test`
    code = ("import sys, opsbook.cli.main, papermill, nbformat, jsonschema\n"
            f"print({GRAMMAR!r} in sys.modules)\n"
            "from jsonschema import FormatChecker\n"
            "fc = FormatChecker()\n"
            "print(fc.conforms('http://a b/', 'iri'), fc.conforms('http://example.org/ä', 'iri'))\n"
            f"print({GRAMMAR!r} in sys.modules)\n")
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False", "True", "True"], out.stdout
    imported = [line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line]
    assert "jsonschema._format" in imported, "control: jsonschema's format module is imported"
    assert imported.index(GRAMMAR) > imported.index("jsonschema._format"), "the grammar loads only on first use"


def test_the_grammar_stand_in_survives_a_walk_over_sys_modules():
    """ipykernel lists `m.__file__` of every module at start; the stand-in once recursed to death there (a kernel
    forked from a process that had imported opsbook died before its first reply)."""
    pytest.importorskip("rfc3987_syntax")
    code = ("import sys, opsbook, jsonschema._format, rfc3987_syntax\n"
            "files = [m.__file__ for m in sys.modules.copy().values() if hasattr(m, '__file__') and m.__file__]\n"
            f"print(len(files) > 50, {GRAMMAR!r} in sys.modules, hasattr(rfc3987_syntax, 'syntax_helpers'))\n"
            "from rfc3987_syntax import syntax_helpers\n"
            "print(rfc3987_syntax.is_valid_syntax('iri', 'http://example.org/ä'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "False", "False", "True"], out.stderr[-2000:]


@pytest.mark.parametrize("factory", [False, True], ids=["started", "forked"])
def test_a_pool_hands_out_each_kernel_once_warm_with_the_run_env_set_inside(tmp_path, factory):
    probe = ("import json, os, sys\n"
             f"open({str(tmp_path / 'seen.json')!r}, 'w').write(json.dumps({{'x': os.environ.get('OB_TEST_X'), "
             "'cwd': os.getcwd(), 'pid': os.getpid(), 'warm': 'pandas' in sys.modules and 'opsbook.run.context' in "
             f"sys.modules, 'history': get_ipython().history_manager.enabled, 'grammar': {GRAMMAR!r} in sys.modules}}))")
    with KernelPool(size=1, cwd=tmp_path, factory=factory) as pool:
        first = pool.take()
        pid = first.kernel_pid
        try:
            first.prepare({"OB_TEST_X": "one"}, tmp_path)
            first.execute(probe)
            seen = json.loads((tmp_path / "seen.json").read_text())
            with pytest.raises(KernelError, match="one runbook only"):
                first.prepare({"OB_TEST_X": "two"}, tmp_path)
        finally:
            first.shutdown()
        assert seen == {"x": "one", "cwd": str(tmp_path), "pid": pid, "warm": True, "history": False,
                        "grammar": False}
        second = pool.take()
        try:
            second.prepare({}, FIXTURES)
            second.execute(probe)
            again = json.loads((tmp_path / "seen.json").read_text())
        finally:
            second.shutdown()
    assert again["pid"] != seen["pid"] and again["x"] is None and again["cwd"] == str(FIXTURES), "nothing leaks"


@pytest.mark.parametrize("factory", [False, True], ids=["started", "forked"])
def test_a_kernel_that_died_before_its_run_is_replaced_by_a_fresh_one(tmp_path, factory):
    """A warm kernel killed while it waited in the pool (or one that died starting) costs no run: take() hands
    out a fresh kernel instead."""
    with KernelPool(size=1, cwd=tmp_path, factory=factory, refill=False) as pool:
        pool.wait_ready()
        doomed = pool._starting[0][0]
        os.kill(doomed.kernel_pid, signal.SIGKILL)
        deadline = time.time() + 30
        while doomed.alive() and time.time() < deadline:
            time.sleep(0.05)
        kernel = pool.take()
        try:
            assert kernel is not doomed and kernel.error is None and kernel.alive()
            kernel.prepare({}, tmp_path)
            kernel.execute(f"open({str(tmp_path / 'ran')!r}, 'w').write('yes')")
        finally:
            kernel.shutdown()
    assert (tmp_path / "ran").read_text() == "yes"


def test_run_many_runs_each_job_in_a_fresh_kernel_on_worker_processes(tmp_path, monkeypatch):
    folder = tmp_path / "rbs"
    notebook(folder, "pid", "import os\nfrom opsbook import record\nrecord('kernel_pid', os.getpid())\n"
                            "record('target_seen', target)")
    monkeypatch.setenv("OPSBOOK_RUNBOOKS", str(folder))
    config = from_dict({"targets": {"a": {"dsn": "host=127.0.0.1 port=1"}, "b": {"dsn": "host=127.0.0.1 port=1"}}})
    jobs = [Job("pid", t) for t in ("a", "b", "a", "b")]
    lines: list[str] = []
    results = run_many(jobs, workers=2, config=config, output_dir=tmp_path / "out", progress=lines.append)
    assert [r.sidecar["target"] for r in results] == ["a", "b", "a", "b"]
    assert [r.sidecar["metrics"]["target_seen"] for r in results] == ["a", "b", "a", "b"]
    assert all(r.exit_code == 0 for r in results) and len(lines) == 4
    assert len({r.sidecar["metrics"]["kernel_pid"] for r in results}) == 4, "never a kernel for a second run"
    workers = {r.worker["pid"] for r in results}
    assert len(workers) == 2 and os.getpid() not in workers, "two worker processes did the runs"
    kernels = {r.sidecar["metrics"]["kernel_pid"] for r in results}
    assert not [p for p in kernels if _is_kernel(p)], "every kernel is gone once its run is done"
    assert all(r.worker["max_rss_mb"] > 10 and r.worker["kernel_max_rss_mb"] > 10 for r in results)
    for r in results:
        assert_report_files(r.html_path.with_suffix(""))
    index = (tmp_path / "out" / "index.html").read_text()
    assert all(r.html_path.name in index for r in results), "the index is refreshed once, with every run"


def _is_kernel(pid: int) -> bool:
    """A live kernel: started (ipykernel) or forked from the factory (its command line is the factory's)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_text()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z" and ("ipykernel" in cmdline or "opsbook.run.kernels.zygote" in cmdline)


def _gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_kernel(pid):
            return True
        time.sleep(0.1)
    return False


def test_a_forked_kernel_dies_with_its_launcher_and_the_factory_with_its_owner(tmp_path):
    """jupyter_client kills the launcher (the process it started): the fork it stands for must not outlive it;
    and a factory whose owner was killed (no close) must not linger."""
    from opsbook.run.kernels.warm import KernelFactory, WarmKernel

    factory = KernelFactory()
    try:
        kernel = WarmKernel(tmp_path, factory).start()
        assert kernel.error is None, kernel.log_tail()
        forked, launcher = kernel.kernel_pid, kernel.pid
        assert forked != launcher and _is_kernel(forked)
        kernel.execute("import os, sys\nassert os.getppid() != 1 and 'pandas' in sys.modules")
        kernel.shutdown_now()  # SIGKILL to the launcher, as shutdown_kernel(now=True) does
        assert _gone(forked), "the forked kernel exited with its launcher"
        kernel.shutdown()
    finally:
        factory.close()
    owner = subprocess.run([sys.executable, "-c", "import os, time\nfrom opsbook.run.kernels.warm import KernelFactory\n"
                            "f = KernelFactory(); f.kernel_spec()\nprint(f.proc.pid, flush=True)\nos._exit(0)"],
                           capture_output=True, text=True, timeout=120, check=True)
    assert _gone(int(owner.stdout.split()[-1])), "the factory exited with the process that owned it"


def test_run_many_refuses_a_bad_job_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSBOOK_RUNBOOKS", str(FIXTURES))
    with pytest.raises(UnknownTarget):
        run_many([Job("empty"), Job("empty", "nope")], config=from_dict({}), output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_interrupts_the_kernel_and_still_writes_the_report(tmp_path, sig, code):
    marks = tmp_path / "marks"
    marks.mkdir()
    notebook(tmp_path / "rbs", "sleepy",
             "from opsbook import record\nrecord('before_signal', 1)",
             f"import time, pathlib\nm = pathlib.Path({str(marks)!r})\n(m / 'started').touch()\n"
             "try:\n    time.sleep(120)\nfinally:\n    (m / 'cleaned').touch()  # e.g. drop a scratch cluster",
             "record('after_signal', 1)")
    env = {**os.environ, "OPSBOOK_RUNBOOKS": str(tmp_path / "rbs")}
    proc = subprocess.Popen([str(BIN / "opsbook"), "run", "sleepy", "--json", "--output-dir", str(tmp_path / "out")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not (marks / "started").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (marks / "started").exists(), proc.communicate(timeout=30)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert (marks / "cleaned").exists(), "the cell's finally-block ran"
    result = json.loads(out)
    sidecar = assert_report_files(Path(result["report_html"]).with_suffix(""))
    name = signal.Signals(sig).name
    assert sidecar["status"] == "failed" and f"interrupted by {name}" in sidecar["error"], sidecar["error"]
    assert "code cell 3" in sidecar["error"]
    assert sidecar["metrics"] == {"before_signal": 1}, "the cell after the interrupted one did not run"
    assert f"interrupted by {name}" in Path(result["report_html"]).read_text()
    assert "Traceback" not in err
