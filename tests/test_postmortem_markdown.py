"""The post-mortem's Markdown holds what any database user can write to the server log: a real server logs hostile
errors, the post-mortem reads that log, and mistune (what renders the report's Markdown) parses the document."""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import psycopg
import pytest

from opsbook.core.escape import md_cell, md_code, md_text

pytestmark = pytest.mark.slow

# what a database user can make the server log (RAISE EXCEPTION); NUL cannot reach PostgreSQL's text at all
LOGGED = [
    "[Restore service now](https://evil.example/restore)",
    "![x](https://evil.example/pixel.png) and [a][ref]",
    "[click](javascript:alert(document.cookie)) <javascript:alert(1)>",
    '<https://evil.example/auto> <img src=x onerror=alert(1)> <a href="https://evil.example/a">x</a>',
    "https://evil.example/bare and www.evil.example and mail@evil.example",
    "ESC \x1b[31mred\x1b[0m, RLO \u202egnp.exe, LRI \u2066x\u2069, bell \x07, DEL \x7f, CSI \x9b2J",
    "pipes a|b c\\|d e\\\\|f trailing\\",
    "``` `` ` backticks ` and &#x6A;avascript&colon;alert(1) &lt;b&gt;",
]
# and what a hand-edited or damaged log file could hold besides
ANYWHERE = [*LOGGED, "NUL \x00 here", "issue #42 #", "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\x85\x1b"]
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()


def parse(md: str) -> list[dict]:
    import mistune

    return mistune.create_markdown(renderer="ast", plugins=["table", "url", "strikethrough"])(md)


def walk(nodes):
    for n in nodes:
        yield n
        yield from walk(n.get("children") or [])


def text_of(node) -> str:
    return node.get("raw", "") + "".join(text_of(c) for c in node.get("children") or [])


def assert_inert(md: str) -> list[dict]:
    """No link, image or HTML in the parsed document, no control or bidi character in its source; its AST."""
    import mistune

    assert not UNSAFE.search(md), repr(UNSAFE.search(md))
    ast = parse(md)
    kinds = {n["type"] for n in walk(ast)}
    assert not kinds & {"link", "image", "inline_html", "block_html"}, \
        [n for n in walk(ast) if n["type"] in ("link", "image", "inline_html", "block_html")]
    html = mistune.create_markdown(plugins=["table", "url", "strikethrough"])(md)
    assert not re.search(r"<(a|img|script|iframe)\b|<[^>]*\s(href|src)=", html, re.I), html
    return ast


@pytest.fixture(scope="module")
def hostile_log(tmp_path_factory):
    """A real server logging csvlog, each hostile text in an error's message and a cancelled statement's text;
    (server, conninfo, log file, start, end)."""
    from conftest import _server
    from incident import log_marker, wait_logged
    from opsbook.database.demo.incident import LOG_SETTINGS

    server = _server(tmp_path_factory, "pm-md", **LOG_SETTINGS)
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            c.execute("CREATE DATABASE shop")
        conninfo = server.conninfo(dbname="shop")
        start = time.time()
        for text in LOGGED:  # an error, then a statement timeout: the timeline gives each its own row
            with psycopg.connect(conninfo, autocommit=True) as c:
                with pytest.raises(psycopg.errors.RaiseException):
                    c.execute("DO $do$BEGIN RAISE EXCEPTION '%', $h$" + text + "$h$; END$do$")
                c.execute("SET statement_timeout = '10ms'")
                with pytest.raises(psycopg.errors.QueryCanceled):
                    c.execute("SELECT pg_sleep(5), $h$" + text + "$h$")
        log_marker(conninfo, "opsbook-test-hostile-logged")
        wait_logged(server.data_dir / "log", "opsbook-test-hostile-logged")
        yield server, conninfo, server.data_dir / "log" / "postgresql.csv", start, time.time()
    finally:
        server.stop()


def test_hostile_log_lines_stay_text_in_the_document(hostile_log, tmp_path, monkeypatch):
    from opsbook.config.file import from_dict
    from opsbook.run.context import Runbook
    from opsbook.incident.postmortem import PostMortem

    server, conninfo, log, start, end = hostile_log
    config = from_dict({"targets": {"shop": {"dsn": conninfo}},
                        "history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"}})
    monkeypatch.setenv("OPSBOOK_REPORT_STEM", str(tmp_path / "post-mortem--shop"))
    rb = Runbook("post-mortem", "shop", config=config)
    rb.connect()
    pm = PostMortem(rb, incident_start=iso(start - 1), incident_end=iso(end + 1), padding_minutes=1,
                    log_path=str(log), title="hostile log | lines")
    pm.judge()
    rb.close()
    pm.write_document()
    md = (tmp_path / "post-mortem--shop.md").read_text()
    assert sum(e.kind == "statement_timeout" for e in pm.ev.log.events) == len(LOGGED)  # the reader saw them all

    ast = assert_inert(md)
    tables = [n for n in ast if n["type"] == "table"]
    heads = [[text_of(c).strip() for c in t["children"][0]["children"]] for t in tables]
    assert heads == [["time", "source", "what"], ["action", "owner", "due"]], heads
    rows = tables[0]["children"][1]["children"]
    row_lines = [x for x in md.split("## Timeline (UTC)")[1].split("## Root cause")[0].splitlines()
                 if x.startswith("| ") and not x.startswith("| time ")]
    assert len(rows) == len(row_lines) and all(len(r["children"]) == 3 for r in rows)
    whats = [" ".join(text_of(r["children"][2]).split()) for r in rows]
    for text in LOGGED:  # each is in its row, whole (as far as the row shows it), as text
        shown = " ".join(UNSAFE.sub("", text).split()).replace("|", "")
        assert any(shown in w.replace("|", "") for w in whats), (shown, whats)
    assert "# Post-mortem: hostile log \\| lines" in md


@pytest.mark.parametrize("text", ANYWHERE, ids=range(len(ANYWHERE)))
def test_each_escape_keeps_any_text_inert(text):
    md = "\n".join([f"# {md_text(text)}", "", f"Cause: {md_code(text)}.", "", f"- {md_text(text)}", "",
                    "| time | what | n |", "|---|---|---|", f"| 12:00 | {md_cell(text)} | 1 |",
                    f"| {md_cell(text)} | {md_cell(text)} | {md_cell(text)} |", ""])
    ast = assert_inert(md)
    (table,) = [n for n in ast if n["type"] == "table"]
    rows = table["children"][1]["children"]
    assert [len(r["children"]) for r in rows] == [3, 3]
    shown = " ".join(UNSAFE.sub("", text).split())  # what each form must show: the text, cleaned
    heading, cause = (n for n in ast if n["type"] in ("heading", "paragraph"))
    assert text_of(heading) == shown and text_of(cause) == f"Cause: {shown}."
    assert text_of(rows[0]["children"][1]) == "|".join(" ".join(p.split()) for p in shown.split("|"))
