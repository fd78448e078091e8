"""What a runbook shows reads well in JupyterLab's light and dark themes, and database text is never typeset.

The real JupyterLab renders the outputs in headless Chromium; every text's contrast with the background it is
drawn on is measured from the computed colours (WCAG 2.x).
"""
from __future__ import annotations

import contextlib
import html
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from opsbook.core import display
from opsbook.incident import triage
from opsbook.core.findings import Finding
from conftest import free_port
from report_browser import CHROMIUM, browser

SQL = "SELECT id FROM public.jobs WHERE status = $1 ORDER BY created_at LIMIT $2"
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}  # as Lab names them in its settings and body
MIN_CONTRAST = 4.5  # WCAG 2.x AA for body text
LAB_TIMEOUT_MS = 180_000  # JupyterLab's first load in a cold Chromium on a busy 2-core machine

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="needs chromium")

CONTRASTS = r"""() => {
  const rgba = s => { const m = s.match(/rgba?\(([^)]+)\)/); const p = m[1].split(',').map(Number);
                      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  const ground = el => {  // the colour behind el: its own and its ancestors' backgrounds, composited
    const layers = [];
    for (let e = el; e; e = e.parentElement) layers.push(rgba(getComputedStyle(e).backgroundColor));
    return layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255, 1]);
  };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                     return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const out = [];
  for (const sel of ['.ob-verdict', '.ob-verdict b', '.ob-measured', '.ob-table th', '.ob-table td', '.ob-muted',
                     '.ob-code', '.ob-badge']) {
    for (const el of document.querySelectorAll(sel)) {
      const bg = ground(el);
      out.push({sel, text: el.textContent.slice(0, 40), ratio: ratio(over(rgba(getComputedStyle(el).color), bg), bg)});
    }
  }
  return out;
}"""


def output_markup() -> str:
    findings = [Finding("queries.slow", "warning", f"slow statement: {SQL}", detail=f"mean 812 ms: {SQL}",
                        objects=["public.jobs"], remediation="CREATE INDEX ON public.jobs (status, created_at);"),
                Finding("locks.blocking", "critical", "3 sessions blocked by pid 4711",
                        remediation="SELECT pg_terminate_backend(4711);"),
                Finding("cache.hit_ratio", "ok", "cache hit ratio 99.9%")]
    table = pd.DataFrame([{"calls": 1200, "mean_exec_ms": 812.5, "query": SQL}])
    return (display.summary_html(findings, "P1 high: respond within 1 hour", measured_at=time.time())
            + display.with_measured_at(triage.verdict_html(findings), time.time())  # incident-triage's own box
            + display.findings_html(findings) + display.table_html(table))


def shown(markup: str) -> str:
    """What show_html sends to the front end for `markup`."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.display_pub.publish = lambda data, **kw: sent.append(data)  # what the kernel would send
    sent: list = []
    display.show_html(markup)
    return sent[0]["text/html"]


def lab_notebook(path: Path, outputs: list[str]) -> None:
    """A notebook whose code cells hold these HTML outputs, as a kernel would have sent them."""
    import nbformat

    cells = [nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output("display_data", data={"text/html": o})])
             for o in outputs]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


def lab_settings(config_dir: Path, theme: str) -> None:
    """JupyterLab's user settings: the theme, and no news pop-up over the page."""
    ext = config_dir / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    ext.mkdir(parents=True)
    (ext / "themes.jupyterlab-settings").write_text(f'{{"theme": "{THEMES[theme]}"}}')
    (ext / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_readable_and_never_typeset_in_jupyterlab(theme, tmp_path):
    """The real JupyterLab, in its light or dark theme, opens a notebook holding a runbook's output and, as a
    control, the same SQL in a plain paragraph. Once Lab's MathJax has typeset the control, the runbook's output
    holds no math and reads exactly as the database wrote it, and every text in it has AA contrast with the
    background it is drawn on (colours as Chromium computed them)."""
    token, port = uuid.uuid4().hex, free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    lab_settings(tmp_path / "cfg", theme)
    lab_notebook(tmp_path / "sql.ipynb", [shown(output_markup()), f'<p class="control">{html.escape(SQL)}</p>'])
    subprocess.run([sys.executable, "-m", "jupyter", "trust", str(tmp_path / "sql.ipynb")], env=env, check=True,
                   capture_output=True, timeout=120)  # as a live session's own outputs are
    log = (tmp_path / "lab.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
                               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
                               f"--ServerApp.root_dir={tmp_path}", "--allow-root"],
                              env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        with browser() as ctx:
            tab = ctx.new_page()
            tab.set_default_timeout(LAB_TIMEOUT_MS)
            url = f"http://127.0.0.1:{port}/lab/tree/sql.ipynb?token={token}"
            end = time.monotonic() + LAB_TIMEOUT_MS / 1000
            while True:  # the server is up when it answers
                try:
                    tab.goto(url, wait_until="load")
                    break
                except Exception:
                    if time.monotonic() > end or server.poll() is not None:
                        raise
                    time.sleep(0.2)
            tab.wait_for_function("() => document.querySelector('.control mjx-container')")  # MathJax has run
            tab.wait_for_function(f"() => document.body.dataset.jpThemeName === {THEMES[theme]!r}")
            seen = tab.evaluate("""() => {
                const ours = document.querySelector('.jp-CodeCell .jp-OutputArea');  // the first cell's
                return {math: ours.querySelectorAll('mjx-container').length,
                        cells: [...ours.querySelectorAll('td')].map(td => td.textContent)}; }""")
            contrasts = tab.evaluate(CONTRASTS)
            with contextlib.suppress(Exception):  # the kernel dialog hides part of the screenshot, nothing else
                tab.locator(".jp-Dialog button", has_text="No Kernel").click(timeout=10_000)
                tab.locator(".jp-Dialog").wait_for(state="detached", timeout=10_000)
            tab.screenshot(path=str(tmp_path / f"lab-{theme}.png"), full_page=True)
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a server that does not stop is killed, never left behind
            server.kill()
            server.wait(timeout=30)
        log.close()
    assert seen["math"] == 0
    assert SQL in seen["cells"]  # the reader sees the statement exactly
    kinds = {m["sel"] for m in contrasts}
    assert {".ob-verdict", ".ob-table th", ".ob-table td", ".ob-measured"} <= kinds, kinds
    poor = [m for m in contrasts if m["ratio"] < MIN_CONTRAST]
    assert not poor, poor


def test_the_verdict_says_when_it_was_measured():
    at = 1796626800.0  # 2026-12-07 07:00:00 UTC
    box = display.summary_html([], "headline", measured_at=at)
    assert "measured at 2026-12-07 07:00:00 UTC" in box
    assert "measured at" not in display.summary_html([], "headline")
    own = display.with_measured_at('<div class="ob-verdict"><b>P1</b></div>', at)
    assert own.endswith("measured at 2026-12-07 07:00:00 UTC</div></div>")
