"""Statement texts as pg_stat_statements keeps them, made plannable: a typed literal it replaced (`interval $4`)
becomes a cast of the parameter to PostgreSQL's own type; nothing else changes."""
from __future__ import annotations

import pytest
from opsbook.tuning.statement import plannable


@pytest.mark.parametrize("text, expected", [
    ("SELECT count(*) FROM t WHERE created_at > now() - interval $4",
     "SELECT count(*) FROM t WHERE created_at > now() - CAST($4 AS interval)"),
    ("SELECT a FROM t WHERE b = timestamp with time zone $1", "SELECT a FROM t WHERE b = CAST($1 AS timestamp with time zone)"),
    ("SELECT a FROM t WHERE e = double precision $3 AND d = DATE $2",
     "SELECT a FROM t WHERE e = CAST($3 AS double precision) AND d = CAST($2 AS date)"),
    # not typed literals: left as they are
    ("SELECT a FROM t WHERE c AT TIME ZONE $2 = d", None),
    ("SELECT a FROM t ORDER BY a FETCH FIRST $1 ROWS ONLY", None),
    ("SELECT a FROM t WHERE x LIKE $1 ESCAPE $2", None),
    ("SELECT a FROM t WHERE x = $1 AND y IN ($2, $3) LIMIT $4", None),
    # a type of the database's own (or a quoted name) is never named by opsbook: it stays unplannable
    ('SELECT mytype $1, "date" $2', None),
    ("SELECT '$1 interval' || interval_col FROM t /* interval $1 */", None),
])
def test_typed_literals_become_casts(text, expected):
    assert plannable(text) == (expected or text)


def test_the_rewritten_text_plans_on_a_real_server(pg):
    """The cast parses and plans where the kept text does not."""
    import psycopg

    text = "SELECT count(*) FROM pg_class WHERE now() - interval $1 < now() AND relpages > int $2"
    with psycopg.connect(pg.conninfo(), autocommit=True) as c:
        with pytest.raises(psycopg.errors.SyntaxError):
            c.execute("EXPLAIN (GENERIC_PLAN) " + text)
        plan = c.execute("EXPLAIN (GENERIC_PLAN) " + plannable(text)).fetchall()
    assert plan and "Seq Scan on pg_class" in " ".join(r[0] for r in plan)
