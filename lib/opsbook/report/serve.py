"""`opsbook reports serve`: the reports folder over read-only HTTP, the reports and their assets only.

The folder holds more than reports: the history store (`history.sqlite`), the executed notebooks, the schedule
and history logs, the index's caches, recovered rows and other artifacts beside a report. What is served is an
allow-list: the index pages, the reports (`.html`), their sidecars (`<report>.json`, which the index links),
the shared plotly file and pictures; notebooks only with `with_notebooks`. Never a dotfile or dot-folder, never
through a symlink, never outside the folder (`..`, encoded or not): those are 404, as a file that is not there.
"""
from __future__ import annotations

import http.server
import ipaddress
import os
import posixpath
import re
import socket
import stat
import sys
from functools import partial
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

SUFFIXES = {".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
            ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
            ".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
            ".gif": "image/gif", ".webp": "image/webp", ".ico": "image/x-icon", ".pdf": "application/pdf"}
SIDECAR = re.compile(r"^.+--.+--\d{6}Z(-\d+)?\.json$")  # a run's sidecar (report/index.py), not a cache
NOTEBOOK = ".ipynb"
# the index links each run's notebook: say why that link answers 404 here, and how to serve them
NOT_SERVED = "notebooks are not served here (they hold the run's code and outputs): opsbook reports serve --with-notebooks"
DEFAULT_PORT = 8765


def allowed(name: str, *, with_notebooks: bool) -> str | None:
    """The Content-Type to serve the file `name` with, or None when it is not a report or an asset."""
    suffix = posixpath.splitext(name)[1].lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if suffix == ".json" and SIDECAR.match(name):
        return "application/json"
    if suffix == NOTEBOOK and with_notebooks:
        return "application/x-ipynb+json"
    return None


def resolve(root: Path, url_path: str, *, with_notebooks: bool) -> tuple[Path, str] | None:
    """(file, Content-Type) for the URL path, or None (404). `root` is the folder's real path. Each segment is
    percent-decoded once; an empty, `.`, `..` or dot segment, a backslash or NUL, a symlink anywhere on the way,
    or anything but a regular file of an allowed kind is refused."""
    path = urlsplit(url_path).path
    if not path.startswith("/"):
        return None
    if path.endswith("/"):
        path += "index.html"  # the folder's own index; a day folder has none: 404, never a listing
    try:
        segments = [unquote(s, errors="strict") for s in path.split("/")[1:]]
    except UnicodeDecodeError:
        return None
    for s in segments:
        if not s or s.startswith(".") or "/" in s or "\\" in s or "\x00" in s:
            return None
    current = root
    for s in segments:
        current = current / s
        try:
            st = os.lstat(current)
        except (OSError, ValueError):
            return None
        if stat.S_ISLNK(st.st_mode):
            return None
    if not stat.S_ISREG(st.st_mode):
        return None
    kind = allowed(segments[-1], with_notebooks=with_notebooks)
    return (current, kind) if kind else None


class ReportsHandler(http.server.BaseHTTPRequestHandler):
    """GET and HEAD of what `resolve` allows; everything else 404 (or 405 for other methods)."""

    server_version = "opsbook-reports"
    sys_version = ""

    def __init__(self, *args, root: Path, with_notebooks: bool, **kw):
        self.root, self.with_notebooks = root, with_notebooks
        super().__init__(*args, **kw)

    def do_GET(self):  # noqa: N802 - http.server's names
        self._send(body=True)

    def do_HEAD(self):  # noqa: N802
        self._send(body=False)

    def _refuse(self):
        self.send_error(405, "read-only")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse  # noqa: N815

    def _send(self, *, body: bool) -> None:
        found = resolve(self.root, self.path, with_notebooks=self.with_notebooks)
        if found is None:
            notebook = not self.with_notebooks and urlsplit(self.path).path.endswith(NOTEBOOK)
            self.send_error(404, NOT_SERVED if notebook else "not a report")
            return
        path, kind = found
        try:  # O_NOFOLLOW: a file swapped for a symlink after the check is not followed either
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            self.send_error(404, "not a report")
            return
        with os.fdopen(fd, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(size))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if body:
                while chunk := f.read(1 << 16):
                    self.wfile.write(chunk)

    def send_error(self, code, message=None, explain=None):
        # the default error page repeats the path: a short fixed body instead
        self.send_response(code, message)
        text = f"{code} {message or ''}\n".encode()
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(text)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(text)


def is_loopback(host: str) -> bool:
    """Whether every address `host` stands for is a loopback one (127.0.0.0/8, ::1)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def make_server(root: Path, *, bind: str, port: int, with_notebooks: bool) -> http.server.ThreadingHTTPServer:
    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        daemon_threads = True

    handler = partial(ReportsHandler, root=Path(os.path.realpath(root)), with_notebooks=with_notebooks)
    return Server((bind, port), handler)


def serve(root: Path, *, bind: str = "127.0.0.1", port: int = DEFAULT_PORT, with_notebooks: bool = False,
          announce: Callable[[str], None] = print, warn: Callable[[str], None] | None = None) -> None:
    """Serve `root` until interrupted (SIGINT or SIGTERM)."""
    import signal  # noqa: PLC0415

    from ..core.errors import UsageError  # noqa: PLC0415

    warn = warn or (lambda text: print(text, file=sys.stderr))
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"no reports folder at {root}: run a runbook first, or give --config with its [reports] dir")
    if not is_loopback(bind):
        warn(f"WARNING: serving the reports on {bind or 'every address'}, reachable from other machines, WITHOUT "
             "authentication or TLS: anyone who reaches this port reads every report (database names, query "
             "texts, findings). Put a web server with authentication in front instead (see the docs).")
    try:
        server = make_server(root, bind=bind, port=port, with_notebooks=with_notebooks)
    except OSError as e:
        raise UsageError(f"cannot listen on {bind}:{port}: {e.strerror}") from None

    def stop(*_):
        raise KeyboardInterrupt

    host, real_port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        announce(f"serving {root} on http://{shown}:{real_port}/ (read-only: reports and their assets"
                 f"{', notebooks' if with_notebooks else ''}; Ctrl-C stops)")
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
