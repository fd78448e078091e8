"""The query-tuning workload, shared by tests/test_query_tuning.py (200,000 rows per table) and
benchmarks/query_tuning.py (millions): four tables, statements that need a missing single-column (events), a
two-column (orders) and a partial index (notices), an aggregate no index helps, and a write-heavy ledger whose rare
lookup is not worth an index's write cost.

Everything here goes through a plain libpq connection string, so the benchmark uses it without the suite's
fixtures."""
from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

ROWS = 200_000
SLOW = "SELECT id, payload FROM public.events WHERE account_id = %s"
NO_INDEX = "SELECT status, count(*) FROM public.events GROUP BY status ORDER BY 2 DESC"
UNREAD = "SELECT id FROM public.notices WHERE user_id = %s AND read_at IS NULL"
TWO_COLUMNS = "SELECT id, note FROM public.orders WHERE region = %s AND channel = %s"
# barely useful: two calls a month on a table that takes a fifth of its rows in inserts and a tenth in (HOT) updates
# of another column
LEDGER = "SELECT id FROM public.ledger WHERE account = %s"
TABLES = ("events", "orders", "notices", "ledger")
# (text, calls per repeat, parameters of call i)
STATEMENTS = ((SLOW, 40, lambda i: (i,)), (NO_INDEX, 5, lambda i: ()), (TWO_COLUMNS, 20, lambda i: (i, i)),
              (UNREAD, 20, lambda i: (i,)), (LEDGER, 2, lambda i: (i,)))
# what the runbook must propose on this workload, and nothing else: (table, columns as the proposal shows them)
EXPECTED = {("public.events", "account_id"), ("public.orders", "region, channel"),
            ("public.notices", "user_id where read_at is null")}
# this database's statements only: a reset of all would wipe the workload of another database on the same server
RESET_MINE = "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)"


def execute(conninfo: str, sql: str, params=None):
    with psycopg.connect(conninfo, autocommit=True) as c:
        cur = c.execute(sql, params)
        return cur.fetchall() if cur.description else None


def wait_for(conninfo: str, sql: str, deadline_s: float = 20, params=None) -> None:
    """Table statistics reach the views when a backend goes idle or ends: wait for them, with a deadline."""
    end = time.monotonic() + deadline_s
    while not (execute(conninfo, sql, params) or [[False]])[0][0]:
        if time.monotonic() > end:
            raise AssertionError(f"not true within {deadline_s} s: {sql}")
        time.sleep(0.2)


def seed(conninfo: str, rows: int = ROWS, setup: Callable[[], None] | None = None, deadline_s: float = 20) -> None:
    """The four tables with `rows` rows each (loaded long ago: their write counters reset after the load), analyzed,
    then this database's pg_stat_statements reset and the window's writes made: orders' note updated on 1% of its
    rows, ledger grown by a fifth and a tenth of it updated (HOT: note is in no index). `setup` runs before the
    counters' reset (the tests' hostile schema)."""
    big = rows >= 1_000_000
    deadline_s = max(deadline_s, rows / 20_000) if big else deadline_s
    execute(conninfo, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    execute(conninfo, "CREATE TABLE public.events (id bigint PRIMARY KEY, account_id int NOT NULL, status text, "
                      "payload text)")
    execute(conninfo, "INSERT INTO public.events SELECT g, g %% 5000, (ARRAY['new','done','failed'])[g %% 3 + 1], "
                      "md5(g::text) FROM generate_series(1, %s::bigint) g", (rows,))
    execute(conninfo, "CREATE TABLE public.orders (id bigint PRIMARY KEY, region int, channel int, note text)")
    execute(conninfo, "INSERT INTO public.orders SELECT g, g %% 50, (g / 50) %% 40, 'n' FROM generate_series(1, %s::bigint) g",
            (rows,))
    execute(conninfo, "CREATE INDEX orders_region_channel_idx ON public.orders (note)")  # a name the proposal avoids
    execute(conninfo, "CREATE TABLE public.notices (id bigint PRIMARY KEY, user_id int, read_at timestamptz)")
    execute(conninfo, "INSERT INTO public.notices SELECT g, g %% 5000, CASE WHEN g %% 20 <> 0 THEN now() END "
                      "FROM generate_series(1, %s::bigint) g", (rows,))
    execute(conninfo, "CREATE TABLE public.ledger (id bigint PRIMARY KEY, account int NOT NULL, note text) "
                      "WITH (fillfactor = 70)")
    execute(conninfo, "INSERT INTO public.ledger SELECT g, g %% 2000, 'n' FROM generate_series(1, %s::bigint) g", (rows,))
    if setup:
        setup()
    tables = list(TABLES)
    wait_for(conninfo, "SELECT count(*) = 4 FROM pg_stat_user_tables WHERE relname = ANY(%s) AND n_tup_ins >= %s",
             deadline_s, params=(tables, rows))
    execute(conninfo, "SELECT pg_stat_reset_single_table_counters(c.oid) FROM pg_class c WHERE c.relname = ANY(%s) "
                      "AND c.relnamespace = 'public'::regnamespace", (tables,))
    wait_for(conninfo, "SELECT sum(n_tup_ins) = 0 FROM pg_stat_user_tables WHERE relname = ANY(%s)", deadline_s,
             params=(tables,))
    execute(conninfo, "ANALYZE public.events, public.orders, public.notices, public.ledger")  # the reset forgot it
    execute(conninfo, RESET_MINE)
    execute(conninfo, "UPDATE public.orders SET note = 'm' WHERE id <= %s", (rows // 100,))  # heavily updated
    execute(conninfo, "INSERT INTO public.ledger SELECT g, g %% 2000, 'n' FROM generate_series(%s::bigint, %s::bigint) g",
            (rows + 1, rows + rows // 5))
    execute(conninfo, "UPDATE public.ledger SET note = 'x' WHERE id % 10 = 0")
    wait_for(conninfo, "SELECT count(*) = 2 FROM pg_stat_user_tables WHERE (relname = 'orders' AND n_tup_upd >= %s) "
                       "OR (relname = 'ledger' AND n_tup_ins >= %s AND n_tup_upd >= %s)", deadline_s,
             params=(rows // 100, rows // 5, (rows + rows // 5) // 10))


def run_workload(conninfo: str, repeat: int = 1) -> None:
    """Every statement its calls per repeat, `repeat` times, on one connection (server-side parameters: the
    statements reach pg_stat_statements as `... = $1`)."""
    with psycopg.connect(conninfo, autocommit=True) as c:
        for _ in range(repeat):
            for text, calls, params in STATEMENTS:
                for i in range(calls):
                    c.execute(text, params(i)).fetchall()


def placeholders(text: str) -> str:
    """The statement as pg_stat_statements and EXPLAIN see it: %s -> $1, $2, ..."""
    n = 0
    while "%s" in text:
        n += 1
        text = text.replace("%s", f"${n}", 1)
    return text
