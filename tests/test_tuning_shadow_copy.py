"""What the shadow copies beyond plain tables, on the embedded server and on PostgreSQL 15 as targets (the shadow is
always the embedded 18): a partitioned table with its partitions (range by created_at, a default, a sub-partitioned
one), its partitioned and per-partition indexes and statistics, so that partition pruning and per-partition index
choices plan as on the target; expression and partial indexes built only of PostgreSQL's own code, with the
expression's statistics; and an index calling a user's function left out, said, and never run."""
from __future__ import annotations

import psycopg
import pytest
from conftest import drop_database, make_database
from test_query_tuning import (
    RESET_MINE,
    _wait_for,
    hostile_calls,
    hostile_schema,
    wait_hostile_calls,
)

pytestmark = pytest.mark.slow

SCAN = "SELECT id, payload FROM public.events_p WHERE created_at >= %s AND created_at < %s AND account = %s"
BY_EMAIL = "SELECT id FROM public.users WHERE lower(email) = %s"
LIVE = "SELECT id FROM public.users WHERE org = %s AND deleted_at IS NULL"
TRAPPED = "SELECT id FROM public.items WHERE kind = %s"
# planned here with literal bounds: the planner prunes at plan time (pg_stat_statements' texts carry $n instead)
PRUNED = ("SELECT id, payload FROM public.events_p WHERE created_at >= '2026-02-10' AND created_at < '2026-03-20' "
          "AND account = $1")
PARTS = ["events_p_2026_01", "events_p_2026_02", "events_p_2026_03", "events_p_old"]


def _seed(d) -> None:
    d.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    hostile_schema(d)
    d.execute("CREATE TABLE public.events_p (id bigint NOT NULL, account int NOT NULL, created_at timestamptz NOT NULL, "
              "payload text) PARTITION BY RANGE (created_at)")
    for name, lo, hi in (("events_p_2026_01", "2026-01-01", "2026-02-01"), ("events_p_2026_02", "2026-02-01",
                                                                            "2026-03-01"),
                         ("events_p_2026_03", "2026-03-01", "2026-04-01")):
        d.execute(f"CREATE TABLE public.{name} PARTITION OF public.events_p FOR VALUES FROM ('{lo} 00:00:00+00') "
                  f"TO ('{hi} 00:00:00+00')")
    d.execute("CREATE TABLE public.events_p_old PARTITION OF public.events_p DEFAULT")
    d.execute("INSERT INTO public.events_p SELECT g, g % 5000, timestamptz '2025-12-01 00:00:00+00' "
              "+ (g % 120) * interval '1 day' + (g % 1440) * interval '1 minute', md5(g::text) "
              "FROM generate_series(1, 320000) g")
    d.execute("CREATE INDEX events_p_created_idx ON public.events_p (created_at)")  # partitioned, attached ones
    d.execute("CREATE INDEX events_p_03_account_idx ON public.events_p_2026_03 (account)")  # one partition's own
    # a sub-partitioned tree, no rows: its shape must arrive
    d.execute("CREATE TABLE public.tree (id int, region int, at date) PARTITION BY RANGE (at)")
    d.execute("CREATE TABLE public.tree_2026 PARTITION OF public.tree FOR VALUES FROM ('2026-01-01') TO "
              "('2027-01-01') PARTITION BY LIST (region)")
    d.execute("CREATE TABLE public.tree_2026_eu PARTITION OF public.tree_2026 FOR VALUES IN (1, 2)")
    d.execute("CREATE TABLE public.tree_2026_rest PARTITION OF public.tree_2026 DEFAULT")
    # a key of a user's function: the tree stays out of the shadow
    d.execute("CREATE TABLE public.keyed (id int) PARTITION BY RANGE ((evil.hostile(id)))")
    d.execute("CREATE TABLE public.keyed_low PARTITION OF public.keyed FOR VALUES FROM (0) TO (100)")
    d.execute("CREATE TABLE public.users (id bigint PRIMARY KEY, email text, org int, deleted_at timestamptz)")
    d.execute("INSERT INTO public.users SELECT g, 'User' || g || '@Example.com', g % 2000, "
              "CASE WHEN g % 10 = 0 THEN now() END FROM generate_series(1, 200000) g")
    d.execute("CREATE INDEX users_email_lower_idx ON public.users (lower(email))")
    d.execute("CREATE INDEX users_live_org_idx ON public.users (org) WHERE deleted_at IS NULL")
    d.execute("CREATE TABLE public.items (id int PRIMARY KEY, kind int)")
    d.execute("INSERT INTO public.items SELECT g, g % 10 FROM generate_series(1, 20000) g")
    d.execute("CREATE INDEX items_trap ON public.items ((kind + evil.hostile(0)))")
    # the bulk load was long ago: the tables' write counters start after it
    loaded = [*PARTS, "users", "items"]
    _wait_for(d, "SELECT count(*) = 6 FROM pg_stat_user_tables WHERE relname = ANY(%s) AND n_tup_ins > 0",
              params=(loaded,))
    d.execute("SELECT pg_stat_reset_single_table_counters(c.oid) FROM pg_class c WHERE c.relname = ANY(%s) "
              "AND c.relnamespace = 'public'::regnamespace", (loaded,))
    _wait_for(d, "SELECT sum(n_tup_ins) = 0 FROM pg_stat_user_tables WHERE relname = ANY(%s)", params=(loaded,))
    d.execute("ANALYZE public.events_p, public.events_p_2026_01, public.events_p_2026_02, public.events_p_2026_03, "
              "public.events_p_old, public.users, public.items")
    d.execute(RESET_MINE)
    with psycopg.connect(d.conninfo, autocommit=True) as c:
        for i in range(20):
            c.execute(SCAN, ("2026-02-01", "2026-02-08", i)).fetchall()
            c.execute(BY_EMAIL, (f"user{i}@example.com",)).fetchall()
            c.execute(LIVE, (i,)).fetchall()
            c.execute(TRAPPED, (i % 10,)).fetchall()
    _wait_for(d, "SELECT count(*) >= 4 FROM pg_stat_statements WHERE calls >= 20 AND dbid = "
                 "(SELECT oid FROM pg_database WHERE datname = current_database())")


@pytest.fixture(scope="module", params=["embedded", "pg15"])
def target(request):
    server = request.getfixturevalue("pg" if request.param == "embedded" else "pg15")
    d = make_database(server)
    _seed(d)
    yield d
    drop_database(d)


def _generic_plan(d, text: str, types: tuple[str, ...], args: tuple[str, ...]) -> dict:
    """The target's own generic plan: EXPLAIN (GENERIC_PLAN) on 16+, a forced generic plan of a prepared statement
    before (executed with `args`, which its start-up pruning keeps whole: the plan's shape as planned)."""
    with psycopg.connect(d.conninfo, autocommit=True) as c:
        if c.info.server_version >= 160000:
            return c.execute("EXPLAIN (GENERIC_PLAN, FORMAT JSON) " + text).fetchone()[0][0]["Plan"]
        c.execute("SET plan_cache_mode = force_generic_plan")
        c.execute(f"PREPARE p ({', '.join(types)}) AS {text}")
        values = ", ".join(f"'{a}'" for a in args)
        return c.execute(f"EXPLAIN (FORMAT JSON) EXECUTE p({values})").fetchone()[0][0]["Plan"]


def _scans(plan: dict) -> list[tuple[str, str, str]]:
    """(node type, relation, index) of every scan in the plan."""
    out = []
    if "Relation Name" in plan or "Index Name" in plan:
        out.append((plan["Node Type"], plan.get("Relation Name", ""), plan.get("Index Name", "")))
    for k in plan.get("Plans", []):
        out += _scans(k)
    return sorted(out)


@pytest.fixture(scope="module")
def shadow_of(target):
    from opsbook.database.session import connect
    from opsbook.tuning import catalog
    from opsbook.tuning.shadow import open_shadow

    before = wait_hostile_calls(target, 0)
    with connect(target.config().target("test")) as db:
        info = catalog.read(db, {"events_p", "tree", "users", "items", "keyed"})
    with open_shadow(info) as shadow:
        yield shadow, before


def test_partitioned_table_is_copied_and_plans_as_on_the_target(target, shadow_of):
    shadow, _ = shadow_of
    assert ("public", "events_p") not in shadow.not_copied, shadow.not_copied
    assert {("public", "events_p"), *(("public", p) for p in PARTS)} <= set(shadow.copied)
    tree = shadow.conn.execute(
        "SELECT c.relname, coalesce(pg_get_expr(c.relpartbound, c.oid), ''), coalesce(pg_get_partkeydef(c.oid), '') "
        "FROM pg_partition_tree('public.tree') t JOIN pg_class c ON c.oid = t.relid ORDER BY 1").fetchall()
    assert tree == [("tree", "", "RANGE (at)"),
                    ("tree_2026", "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')", "LIST (region)"),
                    ("tree_2026_eu", "FOR VALUES IN (1, 2)", ""), ("tree_2026_rest", "DEFAULT", "")]
    indexes = {r[0] for r in shadow.conn.execute("SELECT indexrelid::regclass::text FROM pg_index i JOIN "
                                                 "pg_partition_tree('public.events_p_created_idx') t ON "
                                                 "t.relid = i.indexrelid")}
    assert len(indexes) == 5 and "events_p_created_idx" in str(indexes)  # the parent's and four attached
    assert shadow.conn.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'events_p' AND inherited")\
        .fetchone()[0] == 4
    mine = shadow.explain_raw(PRUNED)
    theirs = _generic_plan(target, PRUNED, ("int",), ("1",))
    assert _scans(mine) == _scans(theirs), (_scans(mine), _scans(theirs))
    assert {s[1] for s in _scans(mine)} - {""} == {"events_p_2026_02", "events_p_2026_03"}  # pruned to two
    print(f"\nshadow {mine['Total Cost']:,.1f}, target {theirs['Total Cost']:,.1f}: {_scans(mine)}")
    assert mine["Total Cost"] == pytest.approx(theirs["Total Cost"], rel=0.05)
    whole = SCAN.replace("%s", "$1", 1).replace("%s", "$2", 1).replace("%s", "$3")
    mine, theirs = shadow.explain_raw(whole), _generic_plan(target, whole, ("timestamptz", "timestamptz", "int"),
                                                        ("-infinity", "infinity", "1"))
    assert _scans(mine) == _scans(theirs)
    assert mine["Total Cost"] == pytest.approx(theirs["Total Cost"], rel=0.05)


@pytest.mark.parametrize("text, index", [("SELECT id FROM public.users WHERE lower(email) = $1",
                                          "users_email_lower_idx"),
                                         ("SELECT id FROM public.users WHERE org = $1 AND deleted_at IS NULL",
                                          "users_live_org_idx")])
def test_expression_and_partial_indexes_plan_as_on_the_target(target, shadow_of, text, index):
    shadow, _ = shadow_of
    assert f"public.{index}" not in " ".join(shadow.indexes_skipped)
    mine, theirs = shadow.explain_raw(text), _generic_plan(target, text, ("text" if "email" in text else "int",), ("1",))
    assert _scans(mine) == _scans(theirs) and index in str(_scans(mine)), (_scans(mine), _scans(theirs))
    assert mine["Plan Rows"] == pytest.approx(theirs["Plan Rows"], rel=0.05)  # the expression's statistics
    assert mine["Total Cost"] == pytest.approx(theirs["Total Cost"], rel=0.05)


def test_partition_key_of_user_code_keeps_the_tree_out(shadow_of):
    shadow, _ = shadow_of
    assert "evil.hostile" not in str(shadow.copied)
    assert "partition key" in shadow.not_copied[("public", "keyed")], shadow.not_copied
    assert "partition tree cannot be copied whole" in shadow.not_copied[("public", "keyed_low")]
    assert not shadow.conn.execute("SELECT FROM pg_class WHERE relname IN ('keyed', 'keyed_low')").fetchall()


def test_expression_statistics_are_restored(shadow_of):
    shadow, _ = shadow_of
    row = shadow.conn.execute("SELECT n_distinct FROM pg_stats WHERE tablename = 'users_email_lower_idx'").fetchone()
    assert row is not None and row[0] == -1


def test_user_function_index_is_not_copied_nor_run(target, shadow_of):
    shadow, before = shadow_of
    skipped = [s for s in shadow.indexes_skipped if "items_trap" in s]
    assert skipped and "evil.hostile" in skipped[0], shadow.indexes_skipped
    assert not shadow.conn.execute("SELECT FROM pg_class WHERE relname = 'items_trap'").fetchall()
    assert wait_hostile_calls(target, before + 1, deadline_s=3) == before


def test_tuning_proposes_on_the_partitioned_parent_and_says_what_was_skipped(target):
    from opsbook.database.session import connect
    from opsbook.tuning.advisor import tune

    before = hostile_calls(target)
    with connect(target.config().target("test")) as db:
        t = tune(db)
    assert not [n for n in t.notes if "events_p" in n and "not in the shadow" in n], t.notes
    mine = t.indexes[t.indexes["table"].str.startswith("public.events_p")]
    assert len(mine) and set(mine["table"]) == {"public.events_p"}, (t.indexes, t.rejected.to_dict("records"))
    assert "account" in mine.iloc[0]["columns"]
    # no index is built on a partitioned table concurrently: the parent's ON ONLY, each partition's concurrently,
    # attached; the statements run on the target as given, and leave a valid index on every partition
    sql = mine.iloc[0]["create_sql"]
    name = sql.split('"')[1]
    assert f'CREATE INDEX "{name}" ON ONLY "public"."events_p"' in sql and sql.count("ATTACH PARTITION") == 4
    assert sql.count("CREATE INDEX CONCURRENTLY") == 4, sql
    with psycopg.connect(target.conninfo, autocommit=True) as c:
        for one in sql.split(";")[:-1]:
            c.execute(one)
        try:
            valid = c.execute("SELECT bool_and(i.indisvalid), count(*) FROM pg_partition_tree(%s::regclass) t "
                              "JOIN pg_index i ON i.indexrelid = t.relid", (f"public.{name}",)).fetchone()
        finally:
            c.execute(f'DROP INDEX public."{name}"')
    assert valid == (True, 5)
    # the shadow's cost with the proposal equals the target's with the same index (within 5%)
    after = float(mine.iloc[0]["helps"].split("-> ")[1].split(";")[0].replace(",", ""))
    whole = SCAN.replace("%s", "$1", 1).replace("%s", "$2", 1).replace("%s", "$3")
    with psycopg.connect(target.conninfo, autocommit=True) as c:
        for one in sql.split(";")[:-1]:
            c.execute(one)
    try:
        real = _generic_plan(target, whole, ("timestamptz", "timestamptz", "int"), ("-infinity", "infinity", "1"))
    finally:
        target.execute(f'DROP INDEX public."{name}"')
    print(f"\nevents_p: shadow {after:,.1f} with {mine.iloc[0]['columns']}, target {real['Total Cost']:,.1f}")
    assert after == pytest.approx(real["Total Cost"], rel=0.05)
    assert any("items_trap" in n and "evil.hostile" in n for n in t.notes), t.notes
    assert not len(t.indexes[t.indexes["table"] == "public.users"])  # its indexes exist: nothing to propose
    assert wait_hostile_calls(target, before + 1, deadline_s=3) == before


def test_covered_counts_partial_and_expression_indexes():
    """An existing partial index serves a candidate with the same predicate; an expression in front serves no plain
    candidate; a partial one on another predicate serves no plain candidate."""
    from opsbook.tuning.candidates import Candidate, Existing, covered

    t = ("public", "t")
    partial = Existing(("user_id",), "read_at")
    assert covered(Candidate(t, ("user_id",), "read_at"), [partial])
    assert not covered(Candidate(t, ("user_id",)), [partial])
    assert not covered(Candidate(t, ("user_id",), "seen_at"), [partial])
    assert not covered(Candidate(t, ("org",)), [Existing((None, "org"))])  # (lower(email), org)
    assert covered(Candidate(t, ("org",)), [Existing(("org", None))])
    assert not covered(Candidate(t, ("org",)), [Existing(("org",), other_predicate=True)])
    assert covered(Candidate(t, ("org",)), [["org", "id"]])  # the plain lists of before
