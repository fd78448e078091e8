"""The benchmarks' large catalog: a database with n small tables, to show what a query costs at that size."""
from __future__ import annotations

import psycopg

BATCH = 500  # tables created per transaction


def many_tables(server, n: int, *, analyze: bool = False) -> str:
    """A database `many_tables` with n tables, each with a primary key and one more index (3n relations), and 20
    rows in every tenth; `analyze` gives the planner statistics for all of them. Returns the database name."""
    name = "many_tables"
    with psycopg.connect(server.conninfo(), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(server.conninfo(dbname=name), autocommit=True) as c:
        c.execute("CREATE EXTENSION pg_stat_statements")
        for start in range(0, n, BATCH):
            with c.transaction():
                c.execute("".join(f"CREATE TABLE t{i} (id int PRIMARY KEY, v int, created_at timestamptz DEFAULT now());"
                                  f"CREATE INDEX t{i}_v ON t{i} (v);" for i in range(start, min(n, start + BATCH))))
        c.execute("".join(f"INSERT INTO t{i} SELECT g, g FROM generate_series(1, 20) g;" for i in range(0, n, 10)))
        if analyze:
            c.execute("ANALYZE")
    return name
