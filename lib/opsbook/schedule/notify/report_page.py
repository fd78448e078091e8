"""A report page read for a message: its verdict sentences, and a copy that opens alone (plotly.js inlined, links
that left the file made absolute or inert), as HTML or, through Debian's chromium, as PDF."""
from __future__ import annotations

import os
import shutil
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlsplit

from ...core.display import esc

MAX_SENTENCES = 3
PDF_TIMEOUT_MS = 120_000  # loading 4.7 MB of plotly.js and drawing the charts, on a busy machine


class _Scan(HTMLParser):
    """Start tags that matter (their exact text and offset) and the text of the first verdict box's blocks."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[tuple[int, int], str, dict[str, str | None], str]] = []  # ((line, col), tag, attrs, raw)
        self.verdict: list[str] = []
        self._depth = 0  # > 0 inside the first .ob-verdict
        self._done = False
        self._block: list[str] | None = None
        self._blocks: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("a", "script"):
            self.tags.append((self.getpos(), tag, a, self.get_starttag_text()))
        if self._done:
            return
        classes = (a.get("class") or "").split()
        if self._depth == 0 and tag == "div" and "ob-verdict" in classes:
            self._depth = 1
            return
        if self._depth:
            if tag in ("div", "p", "ul", "ol", "table"):
                self._depth += 1
                if self._depth == 2 and tag in ("div", "p"):
                    self._block = []
                    self._blocks.append((tag, ""))

    def handle_endtag(self, tag):
        if self._done or not self._depth or tag not in ("div", "p", "ul", "ol", "table"):
            return
        if self._depth == 2 and self._block is not None:
            kind = self._blocks[-1][0]
            self._blocks[-1] = (kind, " ".join("".join(self._block).split()))
            self._block = None
        self._depth -= 1
        if self._depth == 0:
            self._done = True
            paragraphs = [t for k, t in self._blocks if k == "p" and t]
            self.verdict = (paragraphs or [t for _, t in self._blocks if t][:1])[:MAX_SENTENCES]

    def handle_data(self, data):
        if self._block is not None:
            self._block.append(data)


def _scan(text: str) -> _Scan:
    s = _Scan()
    s.feed(text)
    s.close()
    return s


def verdict(html_path: str | Path | None) -> list[str]:
    """The report's verdict as plain sentences (monthly-health's three; another runbook's headline line); [] when
    there is no report or no verdict box. Plain text: whoever shows it escapes it."""
    if not html_path:
        return []
    try:
        text = Path(html_path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return _scan(text).verdict


def self_contained(html_path: str | Path, reports_root: str | Path, url_prefix: str | None = None) -> str:
    """The report as one file: the shared plotly.js it loads (`../plotly-*.js`) inlined, and each link to another
    file of the reports folder made absolute under `url_prefix`, or inert (its text kept, the path in a title)
    without one; links within the page (`#...`) and to the web are kept."""
    from ...report.html import plotly_source  # noqa: PLC0415

    page = Path(html_path)
    text = page.read_text(encoding="utf-8")
    root = Path(reports_root).absolute()
    starts = _line_starts(text)
    edits: list[tuple[int, int, str]] = []
    for (lineno, col), tag, attrs, raw in _scan(text).tags:
        at = starts[lineno - 1] + col
        if tag == "script":
            src = attrs.get("src")
            if not src or urlsplit(src).scheme:
                continue
            shared = (page.parent / src).resolve()
            source = shared if shared.is_file() and shared.name.startswith("plotly") else plotly_source()
            js = source.read_text(encoding="utf-8").replace("</script", "<\\/script")
            end = text.find("</script>", at)
            if end < 0:
                continue
            edits.append((at, end + len("</script>"), f'<script type="text/javascript">{js}</script>'))
        else:
            href = attrs.get("href")
            if href is None or href.startswith("#") or urlsplit(href).scheme or href.startswith("//"):
                continue
            edits.append((at, at + len(raw), _relinked(attrs, page, root, href, url_prefix)))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _relinked(attrs: dict[str, str | None], page: Path, root: Path, href: str, url_prefix: str | None) -> str:
    path, _, frag = href.partition("#")
    target = (page.parent / path).resolve() if path else page.resolve()
    try:
        rel = target.relative_to(root.resolve()).as_posix()
    except ValueError:
        rel = target.name
    kept = "".join(f' {k}="{esc(v)}"' for k, v in attrs.items() if k not in ("href", "title") and v is not None)
    if url_prefix:
        url = url_prefix.rstrip("/") + "/" + quote(rel) + (f"#{quote(frag)}" if frag else "")
        return f'<a href="{esc(url)}"{kept}>'
    return f'<a{kept} title="{esc("on the reports server: " + rel)}">'


def _line_starts(text: str) -> list[int]:
    """The offset of each line's first character, as HTMLParser counts lines (\\n, \\r\\n and \\r end one)."""
    starts, i = [0], 0
    while True:
        n = min((p for p in (text.find("\n", i), text.find("\r", i)) if p >= 0), default=-1)
        if n < 0:
            return starts
        i = n + 2 if text.startswith("\r\n", n) else n + 1
        starts.append(i)


class PdfUnavailable(Exception):
    """No PDF could be made here (no playwright, no chromium, or it failed): the message says which."""


def chromium() -> str | None:
    """Debian's chromium (what the tests drive) when installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def pdf(page_html: str) -> bytes:
    """The self-contained page printed to PDF by headless chromium through playwright, after its charts drew."""
    exe = chromium()
    if exe is None:
        raise PdfUnavailable("no chromium on this machine (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import Error, sync_playwright  # noqa: PLC0415 - optional: PDF attachments only
    except ImportError:
        raise PdfUnavailable("playwright is not installed (pip install playwright)") from None
    with tempfile.TemporaryDirectory(prefix="opsbook-pdf-") as tmp:
        src = Path(tmp) / "report.html"
        fd = os.open(src, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the report may hold what others should not
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page_html)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=exe, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                                   "--disable-background-networking", "--disable-component-update"])
                try:
                    page = browser.new_page(viewport={"width": 1200, "height": 900})
                    page.set_default_timeout(PDF_TIMEOUT_MS)
                    page.route("http*://**", lambda route: route.abort())  # the page is offline; keep it so
                    page.goto(src.as_uri(), wait_until="load")
                    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')]"
                                           ".every(d => d.querySelector('svg.main-svg'))")
                    page.emulate_media(media="print")
                    return page.pdf(format="A4", print_background=True,
                                    margin={"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"})
                finally:
                    browser.close()
        except Error as e:
            raise PdfUnavailable(f"chromium could not print the report: {' '.join(str(e).split())[:160]}") from None
