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
SIDECAR_KEYS = {"runbook", "target", "status", "started_at", "started_by", "duration_s", "server_version_num",
                "parameters", "findings", "metrics", "error"}
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


def require_chromium() -> None:
    """Skip without chromium on a developer's machine; in CI (which installs it) its absence fails."""
    if not CHROMIUM:
        if os.environ.get("CI"):  # .ci/run installs it: in CI a missing browser is a failure, not a skip
            pytest.fail("chromium is not installed in CI (.ci/run installs Debian's chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium)")


def rendered_dom(html_path: Path) -> str:
    """The DOM after scripts ran, from headless chromium (skips when chromium is not installed)."""
    require_chromium()
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


# ------------------------------------------------------------------ what a reader sees, measured in the browser
DOUBLE_ESCAPED = re.compile(r"&(quot|#x27|#39|amp|lt|gt|#34);")
PLACEHOLDERS = {"new text", "click to enter", "undefined", "null"}
MISSING_CELL = {"nan", "NaN", "None", "NaT", "<NA>", "null"}
COUNT_WITH_CENTS = re.compile(r"^-?\d{1,3}(,\d{3})*\.00$")
BARE_INTEGER = re.compile(r"^-?\d[\d,]*$")
PAGE_NEVER = ("(no rows)", "-0.0 s", "new text", "Traceback (most recent call last)")


def _overlap(a: dict, b: dict) -> float:
    """The share of the smaller box covered by the other."""
    w = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / max(min(a["w"] * a["h"], b["w"] * b["h"]), 1.0)


def figure_problems(fig: dict) -> list[str]:
    """What is wrong with one drawn figure (report_browser.MEASURE's facts about it); [] when it reads well."""
    from report_browser import CAP_PX, FLOOR_PX, PX_PER_ROW_MIN  # noqa: PLC0415

    name = repr(fig["title"][:60])
    out = []
    if not (fig["width"] > 0 and fig["height"] > 0):
        out.append(f"{name}: not drawn")
        return out
    if not fig["areas"]:
        out.append(f"{name}: no plot area of positive size")
    if not fig["marks"] or not fig["marksInside"]:
        out.append(f"{name}: no marks inside its plot area")
    for a in fig["annotations"]:
        if not a["text"].strip() or a["text"].strip().lower() in PLACEHOLDERS:
            out.append(f"{name}: annotation with empty or placeholder text {a['text']!r}")
    for text in [fig["title"], *fig["texts"]]:
        if DOUBLE_ESCAPED.search(text or ""):
            out.append(f"{name}: text escaped twice: {text[:80]!r}")
    if not FLOOR_PX * 0.9 <= fig["height"] <= CAP_PX + 10:
        out.append(f"{name}: height {fig['height']:.0f} px outside {FLOOR_PX}-{CAP_PX} px")
    if fig["rows"] and fig["areas"]:
        per_row = max(a["h"] for a in fig["areas"]) / fig["rows"]
        if per_row < PX_PER_ROW_MIN:
            out.append(f"{name}: {per_row:.0f} px per row for {fig['rows']} rows: labels overlap")
    labels = [t for t in fig["labels"] + fig["ticks"] if t["text"].strip() and t["w"] > 0]
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            if _overlap(a, b) > 0.3:
                out.append(f"{name}: labels overlap: {a['text'][:40]!r} and {b['text'][:40]!r}")
    legend, svg = fig["legend"], fig["svg"]
    if legend and svg and legend["w"] > 0 and (legend["y"] + legend["h"] > svg["y"] + svg["h"] + 2
                                               or legend["x"] + legend["w"] > svg["x"] + svg["w"] + 2):
        out.append(f"{name}: legend cut off")
    return out


def page_problems(facts: dict) -> list[str]:
    """What is wrong with a whole page: raw values in tables, empty sections, placeholder text; [] when fine."""
    out = []
    for fig in facts["figures"]:
        out += figure_problems(fig)
    for cell in facts["cells"]:
        head, text = cell["head"].lower(), cell["text"]
        if text in MISSING_CELL:
            out.append(f"table cell {text!r} under {cell['head']!r}")
        elif COUNT_WITH_CENTS.match(text) and "usd" not in head and "$" not in head:
            out.append(f"count with cents {text!r} under {cell['head']!r}")
        elif "bytes" in head and BARE_INTEGER.match(text) and abs(int(text.replace(",", ""))) >= 1024:
            out.append(f"raw byte count {text!r} under {cell['head']!r}")
    for s in facts["sections"]:
        if s["level"] >= 2 and not s["outputs"]:
            out.append(f"section {s['heading']!r} shows nothing (only its prose)")
    for never in PAGE_NEVER:
        if never in facts["text"]:
            out.append(f"page says {never!r}")
    if facts["width"] > 1400 + 20:
        out.append(f"page is {facts['width']} px wide at 1,400 px: it scrolls sideways")
    return out
