"""Reports as a browser shows them: headless Chromium (Debian's, driven by playwright) measures each page's DOM.

`python tests/report_browser.py REPORTS_DIR OUT_DIR` writes a 1,400 px full-page screenshot of the newest report of
each runbook (and of the index) into OUT_DIR: `make screenshots`.
"""
from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
WIDTH = 1400
LOAD_TIMEOUT_MS = 180_000  # a page loads plotly.js (4.7 MB): on a busy 2-core machine that takes a while

# Figure bounds: the height a chart may take for its number of rows (categories or tree nodes).
FLOOR_PX, CAP_PX = 220, 1400
PX_PER_ROW_MIN = 14  # below this, one-line labels of a row overlap their neighbours

# Runs in the page: every fact the checks need, measured from the rendered DOM (layout, not markup).
MEASURE = r"""() => {
  const box = el => { const r = el.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; };
  const figures = [...document.querySelectorAll('.js-plotly-plot')].map(div => {
    const svg = div.querySelector('svg.main-svg');
    const areas = [...div.querySelectorAll('.cartesianlayer .subplot .bg, .nsewdrag')].map(box)
      .filter(b => b.w > 0 && b.h > 0);
    // a mark is drawn ink: a bar, marker or text with an area, a line with a length (a flat line has no height)
    const solid = [...div.querySelectorAll('.trace .point, .trace .textpoint')].map(box).filter(b => b.w > 0 && b.h > 0);
    const lines = [...div.querySelectorAll('.trace path.js-line, .trace path.js-fill')].map(box)
      .filter(b => b.w > 0 || b.h > 0);
    const marks = solid.concat(lines);
    const texts = sel => [...div.querySelectorAll(sel)].map(t => ({text: t.textContent, ...box(t)}));
    const layout = div.layout || {};
    const yaxis = (div._fullLayout || {}).yaxis || {};
    const data = div.data || [];
    const ycats = (yaxis.type === 'category' && yaxis._categories) ? yaxis._categories.length : 0;
    const textNodes = data.filter(tr => tr.type === 'scatter' && (tr.mode || '').includes('text'))
      .reduce((n, tr) => n + (Array.isArray(tr.text) ? tr.text.length : 0), 0);
    const rows = Math.max(ycats, textNodes);
    return {title: ((layout.title || {}).text || layout.title || '') + '', height: svg ? box(svg).h : 0,
            width: svg ? box(svg).w : 0, svg: svg ? box(svg) : null, areas, marks: marks.length,
            marksInside: marks.filter(m => areas.some(a => m.x + m.w >= a.x - 1 && m.x <= a.x + a.w + 1 &&
                                                      m.y + m.h >= a.y - 1 && m.y <= a.y + a.h + 1)).length,
            annotations: texts('.annotation-text'), labels: texts('.textpoint text, text.bartext'),
            ticks: texts('.ytick text'), legend: div.querySelector('.legend') ? box(div.querySelector('.legend')) : null,
            texts: texts('text').map(t => t.text), rows,
            yrange: yaxis.range || null, shapes: (layout.shapes || []).length};
  });
  const cells = [...document.querySelectorAll('table')].flatMap(t => {
    const heads = [...t.querySelectorAll('thead th')].map(th => th.textContent.trim());
    return [...t.querySelectorAll('tbody tr')].flatMap(tr => [...tr.children].map((td, i) =>
      ({head: heads[i] || '', text: td.textContent.trim()})));
  });
  const headings = [...document.querySelectorAll('h1, h2, h3, h4')];
  const sections = headings.map((h, i) => {
    const range = document.createRange();
    range.setStartAfter(h);
    const next = headings.slice(i + 1).find(n => +n.tagName[1] <= +h.tagName[1]);
    if (next) range.setEndBefore(next); else range.setEndAfter(document.body.lastChild);
    const frag = range.cloneContents();
    const text = frag.textContent.replace(/\s+/g, ' ').trim();
    // what cells put out: opsbook's own blocks (class ob-*), charts, tables, stream output
    const outputs = frag.querySelectorAll('[class^="ob-"], [class*=" ob-"], .js-plotly-plot, table, pre').length;
    return {heading: h.textContent.replace('¶', '').trim(), level: +h.tagName[1], text: text.slice(0, 200),
            length: text.length, outputs};
  });
  return {figures, cells, sections, text: document.body.innerText, width: document.documentElement.scrollWidth};
}"""


@contextlib.contextmanager
def browser() -> Iterator[object]:
    """Debian's chromium, headless, no network services, its own throwaway profile."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - a test and screenshot dependency only

    with tempfile.TemporaryDirectory(prefix="opsbook-chromium-") as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                    viewport={"width": WIDTH, "height": 900})
        try:
            yield ctx
        finally:
            ctx.close()


def open_page(ctx, html_path: Path):
    page = ctx.new_page()
    page.set_default_timeout(LOAD_TIMEOUT_MS)
    page.goto(Path(html_path).absolute().as_uri(), wait_until="load")
    with contextlib.suppress(Exception):  # a page without figures has nothing to wait for
        page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')]"
                               ".every(d => d.querySelector('svg.main-svg'))", timeout=LOAD_TIMEOUT_MS)
    return page


def measure(ctx, html_path: Path) -> dict:
    page = open_page(ctx, html_path)
    try:
        return page.evaluate(MEASURE)
    finally:
        page.close()


def screenshot(ctx, html_path: Path, out: Path) -> Path:
    page = open_page(ctx, html_path)
    try:
        page.screenshot(path=str(out), full_page=True)
    finally:
        page.close()
    return out


def newest_reports(root: Path) -> list[Path]:
    """The newest report of each runbook and target under root, then the index."""
    newest: dict[tuple[str, str], Path] = {}
    for page in sorted(Path(root).glob("????-??-??/*--*--*.html")):
        runbook, target = page.stem.split("--")[:2]
        newest[(runbook, target)] = page  # sorted by day, then by time: the last one wins
    found = [newest[k] for k in sorted(newest)]
    index = Path(root) / "index.html"
    return found + ([index] if index.is_file() else [])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: report_browser.py REPORTS_DIR OUT_DIR", file=sys.stderr)
        return 2
    root, out = Path(argv[0]), Path(argv[1])
    pages = newest_reports(root)
    if not pages:
        print(f"no reports under {root}: run `opsbook demo` first", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    with browser() as ctx:
        for page in pages:
            name = "index" if page.name == "index.html" else page.stem.rsplit("--", 1)[0]
            print(screenshot(ctx, page, out / f"{name}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
