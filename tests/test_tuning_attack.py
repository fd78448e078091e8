"""query-tuning against a hostile database: its users write tables, names and statement texts meant to make
opsbook run their code, break its run or leave something behind (issue 26, threat model in DESIGN.md "Safety")."""
from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from conftest import drop_database, make_database
from test_tuning_hypopg import need_hypopg
from tuning_workload import RESET_MINE  # this database's statements only: the server is shared by the file's tests

pytestmark = pytest.mark.slow

# 1 and 14 without a literal (pg_stat_statements would keep a literal as $n): 14 is len('opsbook_shadow'), the
# shadow's database name, so on the shadow the CASE folds to its THEN branch and only the target evaluates ELSE
ONE = "length(current_catalog)/length(current_catalog)"
FOURTEEN = f"({ONE}+{ONE})*({ONE}+{ONE}+{ONE}+{ONE}+{ONE}+{ONE}+{ONE})"
# database_to_xml (STABLE, built in) runs SELECT * on every view of the database: the planner evaluates a STABLE
# call with constant arguments while it estimates `id = ...`, so planning alone runs the views
PLANNING_RUNS_VIEWS = (f"SELECT id FROM public.t WHERE id = CASE WHEN length(current_catalog) = {FOURTEEN} "
                       f"THEN {ONE} ELSE length(pg_catalog.database_to_xml({ONE} = {ONE}, {ONE} = {ONE}, "
                       "current_catalog)::text) END")


def tune_on(d):
    from opsbook.database.session import connect
    from opsbook.tuning.advisor import tune

    db = connect(d.config().target("test"))
    return tune(db), db


def small_table(d, name: str = "t", schema: str = "public", rows: int = 20_000) -> None:
    d.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    q = f'"{schema}"."{name}"'
    d.execute(f"CREATE TABLE {q} (id int, v text)")
    d.execute(f"INSERT INTO {q} SELECT g, 'x' FROM generate_series(1, {rows}) g")
    d.execute(f"ANALYZE {q}")


@pytest.fixture
def hostile15(pg15):
    need_hypopg()
    d = make_database(pg15)
    role = f"atk_{uuid.uuid4().hex[:6]}"
    d.execute(f"CREATE ROLE {role} NOLOGIN")
    d.execute(f"CREATE SCHEMA evil AUTHORIZATION {role}")
    yield d, role
    drop_database(d)
    with psycopg.connect(pg15.conninfo(), autocommit=True) as c:
        c.execute(f"DROP ROLE IF EXISTS {role}")


def test_planning_a_statement_runs_no_view_of_the_users(hostile15):
    # proves: a literal-free statement makes the target's planner (hypopg path, PREPARE + EXPLAIN EXECUTE) run a
    # plain role's view and function with opsbook's privileges, which then take an advisory lock and change
    # opsbook's session search_path (both outlive the unit: the pooled connection goes back dirty)
    d, role = hostile15
    small_table(d, rows=10)  # executed by the application: each row evaluates the ELSE branch
    d.execute("CREATE EXTENSION hypopg")
    d.execute("CREATE FUNCTION evil.f() RETURNS int LANGUAGE plpgsql AS $$BEGIN "
              "PERFORM pg_catalog.pg_advisory_lock(4242); "
              "PERFORM pg_catalog.set_config('search_path', 'evil, public, pg_catalog', false); RETURN 1; END$$")
    d.execute(f"ALTER FUNCTION evil.f() OWNER TO {role}")
    d.execute("CREATE VIEW evil.v AS SELECT evil.f() AS x")
    d.execute(f"ALTER VIEW evil.v OWNER TO {role}")
    d.execute(RESET_MINE)
    with psycopg.connect(d.conninfo, autocommit=True) as c:  # the application runs it (its own view, its rights)
        c.execute("SET search_path = public")
        for _ in range(3):
            c.execute(PLANNING_RUNS_VIEWS).fetchall()
        c.execute("SELECT pg_advisory_unlock_all()")
    t, db = tune_on(d)
    try:
        row = next(r for r in t.statements.to_dict("records") if "database_to_xml" in r["query"])
        assert row["shadow_cost"] is not None, row  # planned on the shadow, then on the target by the hypopg path
        pid = db.raw.execute("SELECT pg_backend_pid()").fetchone()[0]
        locks = d.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND pid = %s",
                          (pid,))[0][0]
        path = db.raw.execute("SHOW search_path").fetchone()[0]
        assert (locks, path.replace(" ", "")) == (0, "pg_catalog,pg_temp"), "the users' view ran in opsbook's session"
        said = (t.compare.notes if t.compare is not None else []) + t.notes
        assert any("database_to_xml, which runs SQL of its own" in n for n in said), said
    finally:
        db.close()


def test_a_table_named_like_the_candidate_index_does_not_break_the_run(db):
    # proves: a table public.opsbook_candidate (named in a statement, so copied to the shadow) makes every candidate
    # trial's CREATE INDEX "opsbook_candidate" fail in the shadow, and tune() raises instead of reporting
    small_table(db, "opsbook_candidate")
    small_table(db, "t", rows=50_000)
    db.execute(RESET_MINE)
    with psycopg.connect(db.conninfo, autocommit=True) as c:
        for i in range(5):
            c.execute("SELECT v FROM public.t WHERE id = %s", (i,)).fetchall()
            c.execute("SELECT v FROM public.opsbook_candidate WHERE id = %s", (i,)).fetchall()
    t, sess = tune_on(db)  # raised DuplicateTable from the shadow's CREATE INDEX "opsbook_candidate"
    sess.close()
    tried = set(t.indexes["table"]) | set(t.rejected["table"])
    assert "public.t" in tried, (t.statements, t.notes)


def test_proposals_on_a_long_multibyte_table_name_all_run_as_written(db):
    # proves: the proposed index name is cut at 55 characters, not bytes: with a table name of 31 two-byte letters
    # (62 bytes) the server truncates "<table>_id_idx" and "<table>_b_idx" to the same 63 bytes, so the second
    # proposal's CREATE INDEX fails (relation already exists)
    name = "é" * 31
    db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    db.execute(f'CREATE TABLE public."{name}" (id int, b int, v text)')
    db.execute(f'INSERT INTO public."{name}" SELECT g, g % 7000, \'x\' FROM generate_series(1, 50000) g')
    count = f"SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = '{name}'"
    wait_until(db, lambda: (db.execute(count) or [[0]])[0][0] >= 50_000)
    db.execute(f"SELECT pg_stat_reset_single_table_counters('public.\"{name}\"'::regclass)")  # loaded long ago
    wait_until(db, lambda: (db.execute(count) or [[1]])[0][0] == 0)
    db.execute(f'ANALYZE public."{name}"')
    db.execute(RESET_MINE)
    with psycopg.connect(db.conninfo, autocommit=True) as c:
        for i in range(10):
            c.execute(f'SELECT v FROM public."{name}" WHERE id = %s', (i,)).fetchall()
            c.execute(f'SELECT v FROM public."{name}" WHERE b = %s', (i,)).fetchall()
    t, sess = tune_on(db)
    sess.close()
    sqls = list(t.indexes["create_sql"])
    assert len(sqls) == 2, (sqls, t.rejected)
    with psycopg.connect(db.conninfo, autocommit=True) as c:
        for sql in sqls:
            c.execute(sql)  # the proposal as the report gives it, run by the user
    assert db.execute(f"SELECT count(*) FROM pg_index WHERE indrelid = 'public.\"{name}\"'::regclass")[0][0] == 2


def wait_until(d, ok, deadline_s: float = 20) -> None:
    """Table counters reach the views when a backend goes idle or ends: wait for them, with a deadline."""
    end = time.monotonic() + deadline_s
    while not ok():
        assert time.monotonic() < end, "not true within the deadline"
        time.sleep(0.2)


def test_a_proposed_index_name_is_taken_by_no_relation_of_its_schema(db):
    # proves: the proposal's name avoids every relation of the schema (a table or view named t_id_idx), not only
    # the indexes of the tables read; run as written, the proposal creates the index
    small_table(db, "t", rows=50_000)
    count = "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 't'"
    wait_until(db, lambda: (db.execute(count) or [[0]])[0][0] >= 50_000)
    db.execute("SELECT pg_stat_reset_single_table_counters('public.t'::regclass)")  # loaded long ago
    wait_until(db, lambda: (db.execute(count) or [[1]])[0][0] == 0)
    db.execute("CREATE TABLE public.t_id_idx (x int)")
    db.execute(RESET_MINE)
    with psycopg.connect(db.conninfo, autocommit=True) as c:
        for i in range(5):
            c.execute("SELECT v FROM public.t WHERE id = %s", (i,)).fetchall()
    t, sess = tune_on(db)
    sess.close()
    (sql,) = list(t.indexes["create_sql"])
    assert sql.startswith('CREATE INDEX CONCURRENTLY "t_id_idx2" ON "public"."t" ("id")'), sql
    with psycopg.connect(db.conninfo, autocommit=True) as c:
        c.execute(sql)
