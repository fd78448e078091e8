"""The fleet's wire, for real: a TLS Dask scheduler and workers started as processes with certificates made here by
openssl, a plain tcp:// one (refused without --insecure, said to be insecure with it), a tampered worker whose
answers name files outside the reports folder, and what the client submits to the cluster."""
from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import drop_database, make_database

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
BIN = Path(sys.executable).parent
OPSBOOK = BIN / "opsbook"
CLIENT_ONLY = "client_side_dsn_marker"  # the client's own DSN for target a: if it reached a worker, a fails


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _issue(folder: Path, name: str, ca: str) -> None:
    """name.key and name.pem, signed by the CA whose files are ca.key / ca.pem in `folder`."""
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=folder)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", cwd=folder)
    os.chmod(folder / f"{name}.key", 0o600)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """The cluster's CA with a certificate for the cluster and one for the client; a second CA with a client
    certificate the cluster never trusted."""
    folder = tmp_path_factory.mktemp("certs")
    for ca in ("ca", "rogue-ca"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                 f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN=opsbook test {ca}", cwd=folder)
    _issue(folder, "cluster", "ca")
    _issue(folder, "client", "ca")
    _issue(folder, "rogue", "rogue-ca")
    return folder


@pytest.fixture(scope="module")
def databases(pg):
    dbs = [make_database(pg) for _ in range(2)]
    yield dbs
    for d in dbs:
        drop_database(d)


@pytest.fixture(scope="module")
def worker_config(databases, tmp_path_factory):
    """The workers' own opsbook.toml: the real DSNs live here, on the workers' side only."""
    path = tmp_path_factory.mktemp("worker-config") / "opsbook.toml"
    path.write_text("".join(f"[targets.{n}]\ndsn = {json.dumps(d.conninfo)}\n\n" for n, d in zip("ab", databases))
                    + '[targets.down]\ndsn = "host=127.0.0.1 port=1 dbname=postgres connect_timeout=2"\n')
    return path


def client_config(folder: Path, certs: Path, *, cert: str = "client", extra: str = "") -> Path:
    """The client's opsbook.toml: the same target names, a DSN for a that only the client has, the [fleet] keys."""
    path = folder / "client.toml"
    path.write_text(f'[targets.a]\ndsn = "host=127.0.0.1 port=1 dbname={CLIENT_ONLY} connect_timeout=2"\n\n'
                    '[targets.down]\ndsn = "host=127.0.0.1 port=1 dbname=postgres connect_timeout=2"\n\n'
                    f'[fleet]\ntls_ca_file = "{certs}/ca.pem"\ntls_cert = "{certs}/{cert}.pem"\n'
                    f'tls_key = "{certs}/{cert}.key"\n' + extra)
    return path


def fleet(config: Path, *args, cwd: Path, timeout=300):
    env = {**os.environ, "OPSBOOK_RUNBOOKS": str(FIXTURES), "OPSBOOK_CONFIG": str(config)}
    return subprocess.run([str(OPSBOOK), "fleet", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tls_args(certs: Path) -> list[str]:
    return ["--tls-ca-file", str(certs / "ca.pem"), "--tls-cert", str(certs / "cluster.pem"),
            "--tls-key", str(certs / "cluster.key")]


def _security(certs: Path, cert: str | None = "client"):
    from distributed.security import Security

    keys = {"tls_client_cert": str(certs / f"{cert}.pem"), "tls_client_key": str(certs / f"{cert}.key")} if cert \
        else {}
    return Security(tls_ca_file=str(certs / "ca.pem"), require_encryption=True, **keys)


def start_cluster(folder: Path, *, protocol: str, workers: int, worker_config: Path, certs: Path,
                  preload: Path | None = None, env_extra: dict | None = None):
    """`dask scheduler` and `dask worker` processes; each worker has its own HOME and the workers' config."""
    pytest.importorskip("distributed", reason="the fleet extra (dask[distributed]) is installed by `make test`")
    from distributed import Client

    port = _free_port()
    address = f"{protocol}://127.0.0.1:{port}"
    tls = _tls_args(certs) if protocol == "tls" else []
    base_env = {**os.environ, "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": str(protocol == "tls")}
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--protocol", protocol, "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard", *tls], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, cwd=folder, env=base_env)]
    for i in range(1, workers + 1):
        home = folder / f"worker{i}"
        home.mkdir()
        env = {**base_env, "HOME": str(home), "OPSBOOK_RUNBOOKS": str(FIXTURES), "OPSBOOK_CONFIG": str(worker_config),
               **(env_extra or {})}
        more = ["--preload", str(preload)] if preload else []
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny",
                                       "--no-dashboard", "--name", f"w{i}", "--local-directory", str(home), *tls,
                                       *more], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=home,
                                      env=env))
    security = _security(certs) if protocol == "tls" else None
    deadline = time.time() + 90
    with Client(address, timeout=60, security=security) as client:
        while len(client.scheduler_info()["workers"]) < workers:
            assert time.time() < deadline, "the Dask workers did not register in time"
            time.sleep(0.5)
    return address, procs


def stop_cluster(procs) -> None:
    """The workers first (each stops its own opsbook service), then the scheduler."""
    for group in (procs[1:], procs[:1]):
        for p in group:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in group:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def tls_cluster(certs, worker_config, tmp_path_factory):
    address, procs = start_cluster(tmp_path_factory.mktemp("tls-cluster"), protocol="tls", workers=2,
                                   worker_config=worker_config, certs=certs)
    yield address
    stop_cluster(procs)


TAMPERED = '''"""A tampered worker: its answers name files outside the client's reports folder."""
import os
import opsbook.fleet.task as task

_real = getattr(task.run_target, "real", task.run_target)  # Dask imports a preload file twice


def run_target(*args, **kwargs):
    row = _real(*args, **kwargs)
    planted = b"<p>planted by a worker</p>"
    row["files"] = {**row["files"], "../../escaped.html": planted, os.environ["ESCAPE_TO"]: planted}
    if row.get("result"):
        row["result"]["sidecar"] = "/nowhere/../escaped.json"
        row["result"]["report_html"] = "/nowhere/../escaped.html"
    row["target"] = "../../escaped"
    return row


run_target.real = _real
task.run_target = run_target
'''


@pytest.fixture(scope="module")
def tampered_tcp_cluster(certs, worker_config, tmp_path_factory):
    """A plain tcp:// scheduler with one worker whose answers are forged."""
    folder = tmp_path_factory.mktemp("tcp-cluster")
    (folder / "tampered.py").write_text(TAMPERED)
    escape = folder / "abs-escaped.html"
    address, procs = start_cluster(folder, protocol="tcp", workers=1, worker_config=worker_config, certs=certs,
                                   preload=folder / "tampered.py", env_extra={"ESCAPE_TO": str(escape)})
    yield {"address": address, "escape": escape}
    stop_cluster(procs)


# ------------------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize("scheduler", ["tcp://127.0.0.1:{port}", "127.0.0.1:{port}", "TCP://localhost:{port}"])
def test_plain_tcp_scheduler_is_refused_without_insecure(certs, tmp_path, scheduler):
    with socket.socket() as listener:  # something listens: the refusal is about the scheme, not reachability
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = scheduler.format(port=listener.getsockname()[1])
        cfg = tmp_path / "opsbook.toml"  # no [fleet] section: the refusal does not depend on one
        cfg.write_text('[targets.a]\ndsn = "host=127.0.0.1 port=1 dbname=postgres"\n')
        out = fleet(cfg, "connect", "--targets", "a", "--scheduler", address, cwd=tmp_path, timeout=60)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "--insecure" in lines[0], out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "reports").exists()


@pytest.mark.parametrize("extra, message", [
    ("", "tls_ca_file"),  # [fleet] without its keys, for a tls:// scheduler
    ("missing", "cannot read"),
    ("world", "readable by others"),
])
def test_tls_settings_checked_before_anything_runs(certs, tmp_path, extra, message):
    if extra == "":
        cfg = tmp_path / "client.toml"
        cfg.write_text('[targets.a]\ndsn = "host=127.0.0.1 port=1 dbname=postgres"\n')
    elif extra == "missing":
        cfg = client_config(tmp_path, certs, cert="nope")
    else:
        key = tmp_path / "open.key"
        key.write_bytes((certs / "client.key").read_bytes())
        key.chmod(0o644)
        cfg = client_config(tmp_path, certs)
        cfg.write_text(cfg.read_text().replace(str(certs / "client.key"), str(key)))
    out = fleet(cfg, "connect", "--targets", "a", "--scheduler", "tls://127.0.0.1:1", cwd=tmp_path, timeout=60)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and message in lines[0], out.stderr
    assert not (tmp_path / "reports").exists()


# ------------------------------------------------------------------------------------------ TLS
def test_tls_fleet_runs_and_its_reports_land(certs, tls_cluster, tmp_path):
    out = fleet(client_config(tmp_path, certs), "connect", "--targets", "a,down", "--scheduler", tls_cluster,
                "--output-dir", "reports", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "insecure" not in out.stderr.lower()
    doc = json.loads(out.stdout)
    a = doc["targets"]["a"]
    # the worker connected with its own configuration's DSN: the client's (unreachable) one never travelled
    assert a["status"] == "ok" and a["metrics"]["server_version_num"] >= 150000, a
    assert not [f for f in a["findings"] if f["check"] == "connectivity.unreachable" and f["severity"] == "critical"]
    for t in doc["targets"].values():
        p = Path(t["report_html"])
        assert p.is_file() and p.parent.parent == tmp_path / "reports"
        assert t["worker"].startswith("tls://")
    summary = json.loads(Path(doc["summary_json"]).read_text())
    assert summary["totals"]["insecure"] is False and summary["totals"]["mode"].startswith("dask tls://")


def test_client_without_the_right_certificate_cannot_connect(certs, tls_cluster, tmp_path):
    from distributed import Client

    address = tls_cluster
    with Client(address, timeout=20, security=_security(certs)) as ok:  # the right certificate connects
        assert len(ok.scheduler_info()["workers"]) == 2
    with pytest.raises((OSError, TimeoutError)):  # a certificate from another CA
        Client(address, timeout=3, security=_security(certs, cert="rogue"))
    host, port = address.removeprefix("tls://").split(":")
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))  # no certificate at all: TLS itself refuses
    ctx.check_hostname = False
    with socket.create_connection((host, int(port)), timeout=20) as raw:
        with pytest.raises(ssl.SSLError):  # "certificate required", or the scheduler hangs up
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(b"\0" * 8)
                assert tls.recv(1) == b"", "the scheduler answered a client without a certificate"
    with pytest.raises((OSError, TimeoutError)):  # no TLS at all
        Client(address.replace("tls://", "tcp://"), timeout=3)
    out = fleet(client_config(tmp_path, certs, cert="rogue"), "connect", "--targets", "a", "--scheduler", address,
                cwd=tmp_path, timeout=120)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "cannot reach the Dask scheduler" in lines[0], out.stderr


def test_only_names_and_parameters_travel(certs, tls_cluster, tmp_path, monkeypatch, databases):
    """What the client submits holds the runbook, the target names and the parameters: no DSN, no config text."""
    import cloudpickle
    from distributed import Client

    from opsbook.config.file import load
    from opsbook.fleet import run_fleet

    monkeypatch.setenv("OPSBOOK_RUNBOOKS", str(FIXTURES))
    cfg = client_config(tmp_path, certs)
    cfg.write_text(cfg.read_text().replace(f"dbname={CLIENT_ONLY}", f"dbname={CLIENT_ONLY} host=db.example.com"))
    sent = []
    real_submit = Client.submit

    def recording_submit(self, *args, **kwargs):
        sent.append(cloudpickle.dumps((args, kwargs)))
        sent.append(repr((args, kwargs)).encode())
        return real_submit(self, *args, **kwargs)

    monkeypatch.setattr(Client, "submit", recording_submit)
    result = run_fleet("connect", ["a", "down"], {}, config=load(cfg), scheduler=tls_cluster,
                       output_dir=tmp_path / "reports", progress=lambda line: None)
    assert len(sent) == 4 and result.exit_code == 0, [r["error"] for r in result.rows]
    blob = b"".join(sent)
    for secret in (CLIENT_ONLY, "db.example.com", "dbname", "[targets", "tls_key", str(certs),
                   databases[0].conninfo, "port=1"):
        assert secret.encode() not in blob, secret
    args, kwargs = pickle.loads(sent[0])
    assert args[1:] == ("connect", "a", {}) and set(kwargs) <= {"timeout_s", "fail_on", "key", "pure", "retries"}


# ------------------------------------------------------------------------------------------ plain tcp, forged answers
def test_insecure_run_says_so(certs, tampered_tcp_cluster, tmp_path):
    out = fleet(client_config(tmp_path, certs), "connect", "--targets", "a", "--scheduler",
                tampered_tcp_cluster["address"], "--insecure", "--output-dir", "reports", "--json", cwd=tmp_path)
    assert out.returncode in (0, 1), out.stderr  # it ran (the worker's forged answer is refused: see below)
    assert "Traceback" not in out.stderr
    warning = [line for line in out.stderr.splitlines() if "insecure" in line.lower()]
    assert warning and "tcp://" in warning[0] and "TLS" in warning[0], out.stderr
    doc = json.loads(out.stdout)
    summary = json.loads(Path(doc["summary_json"]).read_text())
    assert summary["totals"]["insecure"] is True
    assert "insecure" in Path(doc["summary_html"]).read_text().lower()


def test_forged_file_names_never_leave_the_reports_folder(certs, tampered_tcp_cluster, tmp_path):
    client = tmp_path / "client"
    client.mkdir()
    out = fleet(client_config(tmp_path, certs), "connect", "--targets", "a", "--scheduler",
                tampered_tcp_cluster["address"], "--insecure", "--output-dir", "reports", "--json", cwd=client)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    doc = json.loads(out.stdout)
    assert list(doc["targets"]) == ["a"]  # the client's own name for the row, not the worker's
    a = doc["targets"]["a"]
    assert a["status"] == "failed" and "../../escaped.html" in a["error"], a
    written = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert all(p.is_relative_to(client / "reports") for p in written if p.is_relative_to(client)), written
    assert not tampered_tcp_cluster["escape"].exists()
    assert not list(tmp_path.rglob("escaped*")), list(tmp_path.rglob("escaped*"))


def test_land_writes_only_names_the_client_makes(tmp_path):
    """The client's landing of one remote answer, with forged names: absolute, `..`, a separator, a path in the
    sidecar; and an honest answer, written under the client's own name."""
    from opsbook.fleet.run import land_remote

    root = tmp_path / "reports"
    root.mkdir()
    outside = tmp_path / "outside.json"
    outside.write_text('{"keep": true}\n')
    forged = [{"../../x.html": b"x"}, {str(tmp_path / "abs.html"): b"x"}, {"sub/x.json": b"{}"}, {"..": b"x"},
              {"a.html": b"x", "b.html": b"y"}, {"x.exe": b"x"}]
    for files in forged:
        raw = {"target": "../../x", "exit_code": 0, "files": files, "worker": "tcp://w", "error": None,
               "duration_s": 1, "result": {"status": "ok", "findings": [], "metrics": {}, "sidecar": str(outside),
                                           "report_html": str(outside), "notebook": "/etc/passwd"}}
        row = land_remote(raw, root, runbook="connect", target="a")
        assert row["target"] == "a" and row["status"] == "failed" and row["report_html"] is None, row
        assert "refused" in row["error"]
    assert outside.read_text() == '{"keep": true}\n'  # the worker's sidecar path was never stamped
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "abs.html").exists()
    assert not [p for p in root.rglob("*") if p.is_file() and p.suffix != ".js"]
    good = {"whatever--name--000000Z.html": b"<p>report</p>", "whatever--name--000000Z.json": b'{"status": "ok"}',
            "whatever--name--000000Z.ipynb": b"{}"}
    raw = {"target": "a", "exit_code": 0, "files": good, "worker": "tcp://w", "error": None, "duration_s": 1,
           "result": {"status": "ok", "findings": [], "metrics": {}, "sidecar": str(outside)}}
    row = land_remote(raw, root, runbook="connect", target="a")
    assert row["status"] == "ok", row
    html = Path(row["report_html"])
    assert html.parent.parent == root and html.name.startswith("connect--a--") and html.read_text() == "<p>report</p>"
    assert json.loads(Path(row["result"]["sidecar"]).read_text())["worker"] == "tcp://w"
    assert outside.read_text() == '{"keep": true}\n'
