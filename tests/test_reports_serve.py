"""`opsbook reports serve`, started as a process over a real reports folder: the index, a report and its plotly
load; the history store, notebooks (unless asked), logs, caches, artifacts, dotfiles, `..` (encoded or not) and
symlinks out of the folder are 404; other methods 405; a bind beyond loopback warns loudly."""
from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from conftest import drop_database, make_database

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
OPSBOOK = Path(sys.executable).parent / "opsbook"


@pytest.fixture(scope="module")
def folder(pg, tmp_path_factory):
    """A reports folder made by a real run of the chart fixture (index, report, notebook, sidecar, plotly), plus
    what else lives there: the history store, logs, an artifact, and symlinks pointing out of it."""
    base = tmp_path_factory.mktemp("serve")
    d = make_database(pg)
    cfg = base / "opsbook.toml"
    cfg.write_text(f"[targets.test]\ndsn = {json.dumps(d.conninfo)}\n[reports]\ndir = {json.dumps(str(base / 'r'))}\n")
    env = {**os.environ, "OPSBOOK_RUNBOOKS": str(FIXTURES)}
    try:
        out = subprocess.run([str(OPSBOOK), "--config", str(cfg), "run", "chart", "--target", "test", "--local",
                              "--json"], capture_output=True, text=True, env=env, timeout=300)
    finally:
        drop_database(d)
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout)
    root = base / "r"
    (root / "history.sqlite").write_bytes(b"SQLite format 3\x00 the history")
    (root / "schedule.log").write_text("schedule log\n")
    (root / "history.log").write_text("history log\n")
    html = Path(run["report_html"])
    (html.parent / f"{html.name.split('.')[0]}.missing.csv").write_text("id,secret\n1,recovered row\n")
    (base / "secret.html").write_text("<p>outside the folder</p>")
    (html.parent / "out.html").symlink_to(base / "secret.html")
    (root / "outdir").symlink_to(base)
    (html.parent / "inside.html").symlink_to(html)  # even within the folder: no symlink is followed
    return {"cfg": cfg, "root": root, "run": run, "env": env, "base": base}


def start(folder, tmp_path, *args):
    """`opsbook reports serve --port 0 ARGS` as a process; (process, base URL, stderr file) once it listens."""
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen([str(OPSBOOK), "--config", str(folder["cfg"]), "reports", "serve", "--port", "0",
                                 *args], stdout=o, stderr=e, env=folder["env"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(r"on (http://\S+/) ", out.read_text())
        if m:
            return proc, m.group(1), err
        if proc.poll() is not None:
            raise AssertionError(f"reports serve exited {proc.returncode}: {err.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("reports serve never said where it listens")


def stop(proc) -> None:
    proc.terminate()
    assert proc.wait(timeout=30) == 0  # SIGTERM: a clean stop


@pytest.fixture
def server(folder, tmp_path):
    proc, url, err = start(folder, tmp_path)
    yield url, err
    stop(proc)


def get(url: str, path: str, method: str = "GET") -> tuple[int, bytes, str]:
    """The raw request line's path as given (no client-side normalisation of `..` or `%2f`)."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.read(), r.getheader("Content-Type") or ""
    finally:
        conn.close()


def rel(folder, p: str) -> str:
    return "/" + Path(p).relative_to(folder["root"]).as_posix()


def test_the_index_a_report_and_its_plotly_load(folder, server):
    url, err = server
    status, body, kind = get(url, "/")
    assert status == 200 and kind.startswith("text/html") and b"chart" in body
    report = rel(folder, folder["run"]["report_html"])
    assert report.encode() in body or report.split("/")[-1].encode() in body  # the index links the report
    status, page, kind = get(url, report)
    assert status == 200 and kind.startswith("text/html") and b"connections by state" in page
    (src,) = set(re.findall(rb'src="([^"]*plotly-[^"]*\.js)"', page))
    plotly = urlsplit(urljoin(url.rstrip("/") + report, src.decode())).path
    assert plotly.count("/") == 1, plotly  # the shared copy at the folder's top
    status, js, kind = get(url, plotly)
    assert status == 200 and kind.startswith("text/javascript") and len(js) > 1_000_000
    assert get(url, rel(folder, folder["run"]["sidecar"]))[0] == 200  # the index links the sidecar
    assert "WARNING" not in err.read_text()


def test_nothing_but_reports_and_assets(folder, server):
    url, _ = server
    root, day = folder["root"], rel(folder, folder["run"]["report_html"]).rsplit("/", 1)[0]
    stem = Path(folder["run"]["report_html"]).name.split(".")[0]
    assert (root / "history.sqlite").exists() and Path(folder["run"]["notebook"]).exists()  # control: all there
    refused = ["/history.sqlite", "/schedule.log", "/history.log", rel(folder, folder["run"]["notebook"]),
               f"{day}/{stem}.missing.csv", f"{day}/.index-cache.json", f"{day}/out.html", f"{day}/inside.html",
               "/outdir/secret.html", "/outdir/opsbook.toml", "/..%2fsecret.html", f"{day}/..%2f..%2fsecret.html",
               "/%2e%2e/secret.html", "/../secret.html", f"{day}/../../secret.html", "/..%5csecret.html",
               "/%2Fetc%2Fpasswd", "//etc/passwd", f"{day}/", "/index.html%00.sqlite"]
    refused += [f"/.index/{p.name}" for p in (root / ".index").glob("*")][:1]
    for path in refused:
        status, body, _ = get(url, path)
        assert status in (403, 404), (path, status)
        assert b"outside the folder" not in body and b"SQLite" not in body and b"recovered row" not in body
    # the index links each run's notebook: its 404 says why and how to serve notebooks
    assert b"opsbook reports serve --with-notebooks" in get(url, rel(folder, folder["run"]["notebook"]))[1]
    assert b"--with-notebooks" not in get(url, "/history.sqlite")[1]
    assert get(url, "/index.html", "POST")[0] == 405
    assert get(url, "/index.html", "DELETE")[0] == 405
    assert get(url, "/index.html", "HEAD")[:2] == (200, b"")


def test_notebooks_only_when_asked(folder, tmp_path):
    proc, url, _ = start(folder, tmp_path, "--with-notebooks")
    try:
        status, body, _ = get(url, rel(folder, folder["run"]["notebook"]))
        assert status == 200 and json.loads(body)["cells"]
        assert get(url, "/history.sqlite")[0] == 404 and get(url, "/schedule.log")[0] == 404
    finally:
        stop(proc)


def test_a_bind_beyond_loopback_warns(folder, tmp_path):
    proc, url, err = start(folder, tmp_path, "--bind", "0.0.0.0")
    try:
        text = err.read_text()
        assert "WARNING: serving the reports on 0.0.0.0" in text and "WITHOUT authentication" in text, text
        assert get(url.replace("0.0.0.0", "127.0.0.1"), "/history.sqlite")[0] == 404
    finally:
        stop(proc)


def test_no_reports_folder_is_one_line_exit_2(tmp_path):
    cfg = tmp_path / "opsbook.toml"
    cfg.write_text(f"[reports]\ndir = {json.dumps(str(tmp_path / 'none'))}\n")
    out = subprocess.run([str(OPSBOOK), "--config", str(cfg), "reports", "serve", "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "no reports folder" in out.stderr
