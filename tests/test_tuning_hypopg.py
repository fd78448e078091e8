"""query-tuning against a hypopg-based advisor on PostgreSQL 15 (Debian's postgresql-15-hypopg): on the shared
workload opsbook's proposals cost no more than hypopg's (the statements' planned cost weighted by calls, plus the
indexes' write cost), the finding says so with numbers, and opsbook leaves nothing behind in its session (no
hypothetical index, no prepared statement), creates nothing and logs no error; a same-named function a plain role
made is never called."""
from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import PG15_BIN, drop_database, make_database
from tuning_workload import run_workload, seed

pytestmark = pytest.mark.slow

HYPOPG_FILES = (Path("/usr/share/postgresql/15/extension/hypopg.control"), PG15_BIN.parent / "lib" / "hypopg.so")


def need_hypopg() -> None:
    missing = [str(p) for p in HYPOPG_FILES if not p.exists()]
    if missing:
        pytest.skip("hypopg for PostgreSQL 15 not installed (apt-get install postgresql-15-hypopg; .ci/run does): "
                    "missing " + ", ".join(missing))


@pytest.fixture(scope="module")
def hypo(pg15):
    need_hypopg()
    d = make_database(pg15)
    seed(d.conninfo)
    d.execute("CREATE EXTENSION hypopg")
    run_workload(d.conninfo)
    yield d
    drop_database(d)


def tune_on(d):
    """tune() on opsbook's own session, and that session (still open) for the checks afterwards."""
    from opsbook.database.session import connect
    from opsbook.tuning.advisor import tune

    db = connect(d.config().target("test"))
    return tune(db), db


def function_calls(d, schema: str, name: str, args: str | None = None) -> int:
    """Calls of schema.name (whose first argument has type `args`, when given) counted by track_functions."""
    with psycopg.connect(d.conninfo, autocommit=True) as c:
        c.execute("SELECT pg_stat_clear_snapshot()")
        row = c.execute("SELECT sum(f.calls) FROM pg_stat_user_functions f JOIN pg_proc p ON p.oid = f.funcid "
                        "WHERE f.schemaname = %s AND f.funcname = %s "
                        "AND (%s::text IS NULL OR p.proargtypes[0] = %s::regtype)",
                        (schema, name, args, args)).fetchone()
        return int(row[0] or 0)


def wait_calls(d, schema: str, name: str, at_least: int, args: str | None = None, deadline_s: float = 20) -> int:
    """Function counts reach the statistics when a backend goes idle or ends: wait for them, with a deadline."""
    end = time.monotonic() + deadline_s
    while True:
        n = function_calls(d, schema, name, args)
        if n >= at_least or time.monotonic() > end:
            return n
        time.sleep(0.2)


def test_opsbook_equals_or_beats_hypopg_and_leaves_nothing(hypo):
    from opsbook.checks.tuning import judge_compare

    indexes = hypo.execute("SELECT indexrelid::regclass::text FROM pg_index ORDER BY 1")
    log = hypo.server.log_file
    offset = log.stat().st_size
    t, db = tune_on(hypo)
    try:
        assert t.compare is not None, t.notes
        c = t.compare
        print(f"\nhypopg: {c.hypopg.indexes} read {c.hypopg.read_cost:,.1f} + write {c.hypopg.write_cost:,.1f}"
              f"\nopsbook: {c.opsbook.indexes} read {c.opsbook.read_cost:,.1f} + write {c.opsbook.write_cost:,.1f}"
              f"\nbaseline {c.baseline:,.1f}, {c.statements} statements, {c.verdict} by {c.by:,.1f} "
              f"({c.by_pct:.1f}%); target server time {t.timings['target_server_ms']:.0f} ms")
        assert c.statements >= 4 and c.hypopg.indexes, c
        assert 'CREATE INDEX ON "public"."events" ("account_id")' in c.hypopg.indexes
        assert len(c.opsbook.indexes) == 3 and c.opsbook.read_cost < c.baseline
        assert c.opsbook.total <= c.hypopg.total and c.verdict in ("equal", "better")
        f = judge_compare(t)
        assert len(f) == 1 and f[0].check == "tuning.compare" and f[0].severity.value == "ok", f
        assert re.fullmatch(r"opsbook's indexes cost (less than|the same as) hypopg's: [\d,]+ against [\d,]+ "
                            r"\([\d,]+, [\d.]+% less; reads and writes\)", f[0].title), f[0].title
        assert f"{c.opsbook.total:,.0f} against {c.hypopg.total:,.0f}" in f[0].title
        assert "weighted by calls" in f[0].detail and "hypopg's: CREATE INDEX ON" in f[0].detail
        # the same session, afterwards: no hypothetical index and no prepared statement of opsbook's left
        with db.unit():
            raw = db.raw
            assert raw.execute("SELECT count(*) FROM public.hypopg_list_indexes").fetchone()[0] == 0
            assert raw.execute("SELECT count(*) FROM pg_catalog.pg_prepared_statements "
                               "WHERE name NOT LIKE '\\_pg3\\_%'").fetchone()[0] == 0
            # the two checks above can fail: what a hypothetical index left in this session looks like
            raw.execute("SELECT public.hypopg_create_index('CREATE INDEX ON public.ledger (account)')")
            assert raw.execute("SELECT count(*) FROM public.hypopg_list_indexes").fetchone()[0] == 1
            raw.execute("SELECT public.hypopg_reset()")
    finally:
        db.close()
    assert hypo.execute("SELECT indexrelid::regclass::text FROM pg_index ORDER BY 1") == indexes  # nothing created
    written = log.read_bytes()[offset:].decode(errors="replace")
    assert "ERROR:" not in written, written[-2000:]


def test_the_log_check_would_see_an_error(hypo):
    """The log check above can fail: a failed statement in this database writes ERROR to the same log."""
    log = hypo.server.log_file
    offset = log.stat().st_size
    with pytest.raises(psycopg.errors.UndefinedTable):
        hypo.execute("SELECT * FROM public.opsbook_no_such_table")
    end = time.monotonic() + 10
    while "ERROR:" not in log.read_bytes()[offset:].decode(errors="replace"):
        assert time.monotonic() < end, "no ERROR line reached the server log"
        time.sleep(0.1)


LOOKALIKE = "LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE 'lookalike ran'; END$$"


def test_without_the_extension_a_lookalike_is_never_called(pg15):
    """A plain role's public.hypopg_create_index(text) and public.hypopg_reset() in a database without hypopg:
    opsbook calls nothing. The database counts every call (track_functions); a direct call shows the counter
    works."""
    d = make_database(pg15)
    role = f"tuning_lookalike_{uuid.uuid4().hex[:6]}"
    try:
        seed(d.conninfo, rows=20_000)
        d.execute(f"CREATE ROLE {role} NOLOGIN")
        d.execute("CREATE FUNCTION public.hypopg_create_index(text, OUT indexrelid oid, OUT indexname text) "
                  "RETURNS SETOF record " + LOOKALIKE)
        d.execute("CREATE FUNCTION public.hypopg_reset() RETURNS void " + LOOKALIKE)
        for fn in ("hypopg_create_index(text)", "hypopg_reset()"):
            d.execute(f"ALTER FUNCTION public.{fn} OWNER TO {role}")
        d.execute(f'ALTER DATABASE "{d.name}" SET track_functions = \'all\'')
        run_workload(d.conninfo)
        t, db = tune_on(d)
        db.close()
        assert len(t.indexes), t.notes  # the run got as far as the comparison
        assert t.compare is None and not [n for n in t.notes if "hypopg" in n], t.notes
        # opsbook's session has ended (its counts flushed): neither lookalike ran
        assert wait_calls(d, "public", "hypopg_create_index", 1, deadline_s=3) == 0
        assert wait_calls(d, "public", "hypopg_reset", 1, deadline_s=1) == 0
        d.execute("SELECT * FROM public.hypopg_create_index('x')")
        assert wait_calls(d, "public", "hypopg_create_index", 1) == 1
    finally:
        drop_database(d)
        with psycopg.connect(pg15.conninfo(), autocommit=True) as c:
            c.execute(f"DROP ROLE IF EXISTS {role}")


def test_an_overload_beside_the_extension_is_never_called(pg15):
    """hypopg in schema hypo, and beside its hypopg_create_index(text) a plain role's hypopg_create_index(varchar)
    in the same schema: opsbook calls the extension's member with its exact argument type, never the overload."""
    need_hypopg()
    d = make_database(pg15)
    role = f"tuning_lookalike_{uuid.uuid4().hex[:6]}"
    try:
        seed(d.conninfo, rows=20_000)
        d.execute(f"CREATE ROLE {role} NOLOGIN")
        d.execute("CREATE SCHEMA hypo")
        d.execute("CREATE EXTENSION hypopg SCHEMA hypo")
        d.execute("CREATE FUNCTION hypo.hypopg_create_index(varchar, OUT indexrelid oid, OUT indexname text) "
                  "RETURNS SETOF record " + LOOKALIKE)
        d.execute(f"ALTER FUNCTION hypo.hypopg_create_index(varchar) OWNER TO {role}")
        d.execute(f'ALTER DATABASE "{d.name}" SET track_functions = \'all\'')
        run_workload(d.conninfo)
        t, db = tune_on(d)
        db.close()
        assert t.compare is not None and t.compare.statements >= 4, t.notes
        assert wait_calls(d, "hypo", "hypopg_create_index", 1, args="text") >= 1  # the member ran
        assert wait_calls(d, "hypo", "hypopg_create_index", 1, args="varchar", deadline_s=3) == 0
        d.execute("SELECT * FROM hypo.hypopg_create_index('x'::varchar)")
        assert wait_calls(d, "hypo", "hypopg_create_index", 1, args="varchar") == 1
    finally:
        drop_database(d)
        with psycopg.connect(pg15.conninfo(), autocommit=True) as c:
            c.execute(f"DROP ROLE IF EXISTS {role}")


def test_a_failed_explain_still_deallocates(pg15):
    """PostgreSQL 13-15's route: PREPARE parses only, EXPLAIN EXECUTE plans, and here planning fails (1/0 is folded
    at plan time). The error is raised, the transaction stays usable (rolled back to the savepoint) and the
    prepared statement is gone; the application's own prepared statement is left alone (no DEALLOCATE ALL)."""
    from opsbook.tuning.hypopg import generic_plan

    d = make_database(pg15)
    try:
        with psycopg.connect(d.conninfo, autocommit=True) as c:
            c.execute("PREPARE app_statement AS SELECT 1")
            with c.transaction():
                with pytest.raises(psycopg.errors.DivisionByZero):
                    generic_plan(c, "SELECT 1 / 0 WHERE $1::int = 1", 150000, [])
                assert c.execute("SELECT name FROM pg_prepared_statements").fetchall() == [("app_statement",)]
                plan = generic_plan(c, "SELECT $1::int + 1", 150000, ["public"])
                assert plan["Node Type"] == "Result"
                assert c.execute("SHOW search_path").fetchone()[0] == "pg_catalog, pg_temp"
            assert c.execute("SELECT name FROM pg_prepared_statements").fetchall() == [("app_statement",)]
    finally:
        drop_database(d)
