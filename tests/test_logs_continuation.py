"""Continuation lines as they reach the reader: PostgreSQL writes a tab after each newline of a message (the
statement's own indentation follows it), and tools along the way (expand, editors, log shippers) turn that tab
into spaces. A real server's log is read both ways, with the same events and texts."""
from __future__ import annotations

import shutil
import subprocess
import time
import uuid

import psycopg
import pytest

from opsbook.logs import Problems, iter_events, show_prefix

STATEMENT = "SELECT 1 AS {marker}\n    FROM pg_class\n  WHERE false"
FAILING = "SELECT nope_{marker}\n    FROM pg_class\n\tWHERE false"


def _events(path, prefix, marker):
    problems = Problems()
    events = [e for e in iter_events(path, prefix=prefix, problems=problems)
              if marker in (e.message or "") + (e.statement or "")]
    return events, problems


@pytest.mark.skipif(shutil.which("expand") is None, reason="coreutils expand not installed")
def test_space_indented_continuations_read_like_tab_ones(pg, tmp_path):
    marker = f"cont_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg.conninfo(), autocommit=True) as c:
        prefix = show_prefix(c)
        c.execute("SET log_statement = 'all'")
        c.execute(STATEMENT.format(marker=marker))
        with pytest.raises(psycopg.errors.UndefinedColumn):
            c.execute(FAILING.format(marker=marker))
        c.execute(f"DO $$BEGIN RAISE LOG 'end_{marker}'; END$$")
    deadline = time.monotonic() + 20
    while f"end_{marker}" not in pg.log_file.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the server did not log the marker"
        time.sleep(0.05)
    tabs = tmp_path / "postgresql.log"
    shutil.copy(pg.log_file, tabs)
    raw = tabs.read_text()
    assert "\n\t    FROM pg_class\n\t  WHERE false" in raw  # PostgreSQL's tab, then the statement's own spaces
    spaces = tmp_path / "expanded.log"
    with open(spaces, "w") as out:
        subprocess.run(["expand", str(tabs)], stdout=out, check=True, timeout=30)
    assert "\n            FROM pg_class\n" in spaces.read_text()

    with_tabs, problems = _events(tabs, prefix, marker)
    assert not problems, problems.lines()
    with_spaces, problems = _events(spaces, prefix, marker)
    assert not problems, problems.lines()  # before: "line not in the log_line_prefix format", the lines dropped
    assert [(e.severity, e.kind) for e in with_spaces] == [(e.severity, e.kind) for e in with_tabs]
    # the two statements and the DO block logged, the error (its STATEMENT attached), the DO block's message
    assert [e.severity for e in with_spaces] == ["LOG", "LOG", "ERROR", "LOG", "LOG"]
    statements = [e for e in with_spaces if e.message.startswith("statement: ")]
    assert len(statements) == 3

    def lines(text):
        return [ln.strip() for ln in (text or "").splitlines()]

    for a, b in zip(with_tabs, with_spaces):
        assert lines(a.message) == lines(b.message) and lines(a.statement) == lines(b.statement)
    assert lines(statements[0].message)[1:] == ["FROM pg_class", "WHERE false"]
    (error,) = [e for e in with_spaces if e.severity == "ERROR"]
    assert lines(error.statement)[1:] == ["FROM pg_class", "WHERE false"]
