"""Assertions about written reports, shared by the runner, report and CLI tests."""
from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

STEM = re.compile(r"^(?P<runbook>[a-z0-9-]+)--(?P<target>[A-Za-z0-9_.-]+)--\d{6}Z(-\d+)?$")
SIDECAR_KEYS = {"runbook", "target", "status", "started_at", "duration_s", "server_version_num", "parameters",
                "findings", "metrics", "error"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Resources(HTMLParser):
    """Every URL the page would fetch by itself: script src, link href, img/iframe/source src, CSS url()/@import."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"])
        if tag in ("img", "iframe", "source", "embed") and a.get("src"):
            self.urls.append(a["src"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", data)
            self.urls += re.findall(r"@import\s+['\"]([^'\"]+)", data)


def fetched_urls(html: str) -> list[str]:
    parser = _Resources()
    parser.feed(html)
    return parser.urls


def assert_offline(html_path: Path) -> None:
    """The page loads nothing from the network: no http(s) or protocol-relative URL in what it fetches."""
    html = Path(html_path).read_text(encoding="utf-8")
    remote = [u for u in fetched_urls(html) if re.match(r"^\s*(https?:)?//", u, re.I)]
    assert not remote, f"{html_path} loads from the network: {remote}"
    assert "require.min.js" not in html and "text/x-mathjax-config" not in html, "lab template CDN scripts are back"


def assert_report_files(stem_path: Path) -> dict:
    """The three files exist with the contract names; returns the sidecar."""
    stem_path = Path(stem_path)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", stem_path.parent.name), stem_path
    assert STEM.match(stem_path.name), stem_path.name
    for suffix in (".html", ".ipynb", ".json"):
        assert stem_path.with_suffix(suffix).is_file(), f"missing {stem_path.with_suffix(suffix)}"
    sidecar = json.loads(stem_path.with_suffix(".json").read_text())
    assert set(sidecar) == SIDECAR_KEYS
    assert_offline(stem_path.with_suffix(".html"))
    return sidecar


def rendered_dom(html_path: Path) -> str:
    """The DOM after scripts ran, from headless chromium (skips when chromium is not installed)."""
    if not CHROMIUM:
        if os.environ.get("CI"):  # .ci/run installs it: in CI a missing browser is a failure, not a skip
            pytest.fail("chromium is not installed in CI (.ci/run installs Debian's chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                              "--disable-background-networking", "--disable-component-update", "--disable-sync",
                              "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                              "--dump-dom", Path(html_path).absolute().as_uri()],
                             capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr[-500:]
    return out.stdout


@pytest.fixture(scope="module", autouse=True)
def offline_sweep(tmp_path_factory):
    """After a test module: every HTML page it left under the session's temp folder loads nothing from the network.

    Import it into a test module (`from report_checks import offline_sweep`) to apply it there.
    """
    base = tmp_path_factory.getbasetemp()
    before = set(base.rglob("*.html"))
    yield
    produced = sorted(set(base.rglob("*.html")) - before)
    for page in produced:
        assert_offline(page)
