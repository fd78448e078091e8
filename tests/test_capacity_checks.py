"""Each capacity check against a real fault made on a real server, and its judge on the edges."""
from __future__ import annotations

import shutil
import time

import pandas as pd
import psycopg
import pytest

from conftest import Database, _server, drop_database, make_database
from deployments import _one, make_standby, wait_for
from opsbook import checks, history
from opsbook.checks.registry import CheckContext, run_check
from opsbook.config.file import from_dict
from opsbook.database.session import connect

DAY = 86400.0
INT4_MAX = 2 ** 31 - 1

FAULTS = """
CREATE EXTENSION IF NOT EXISTS pgstattuple;
CREATE TABLE parents (id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO parents (name) SELECT 'p' || g FROM generate_series(1, 2000) g;
CREATE TABLE children (id serial PRIMARY KEY, parent_id int NOT NULL REFERENCES parents, payload text);
INSERT INTO children (parent_id, payload) SELECT 1 + g % 2000, md5(g::text) FROM generate_series(1, 40000) g;
-- an index nobody uses, and an identical twin of it
CREATE INDEX children_payload ON children (payload);
CREATE INDEX children_payload_twin ON children (payload);
-- a plain index whose column leads another index; a unique index is never redundant
CREATE INDEX parents_name ON parents (name);
CREATE UNIQUE INDEX parents_name_id ON parents (name, id);
-- a composite FK covered by an index on the same columns in another order, plus an extra column: not flagged
CREATE TABLE pairs (a int, b int, PRIMARY KEY (a, b));
CREATE TABLE pair_refs (id serial PRIMARY KEY, a int, b int, c int, FOREIGN KEY (a, b) REFERENCES pairs);
CREATE INDEX pair_refs_bac ON pair_refs (b, a, c);
-- an FK whose column is indexed, but not first: flagged (splinter's false-negative/positive edge)
CREATE TABLE tail_refs (id serial PRIMARY KEY, x int, parent_id int REFERENCES parents);
CREATE INDEX tail_refs_x_parent ON tail_refs (x, parent_id);
-- a bigint sequence feeding an integer column, set near 2^31
CREATE TABLE big_ids (id integer PRIMARY KEY);
CREATE SEQUENCE big_ids_seq AS bigint OWNED BY big_ids.id;
ALTER TABLE big_ids ALTER COLUMN id SET DEFAULT nextval('big_ids_seq');
SELECT setval('big_ids_seq', 2000000000);
INSERT INTO big_ids DEFAULT VALUES;
CREATE TABLE fine_ids (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
-- a table bloated by mass updates with autovacuum off
CREATE TABLE bloated (id int PRIMARY KEY, v int, pad text) WITH (autovacuum_enabled = false);
INSERT INTO bloated SELECT g, 0, repeat('x', 40) FROM generate_series(1, 60000) g;
UPDATE bloated SET v = v + 1;
UPDATE bloated SET v = v + 1;
UPDATE bloated SET v = v + 1;
-- a table nobody analyzed
CREATE TABLE never_analyzed (id int, t text) WITH (autovacuum_enabled = false);
INSERT INTO never_analyzed SELECT g, 'x' FROM generate_series(1, 5000) g;
"""


@pytest.fixture(scope="module")
def faulty(pg):
    """One database with every fault, shared by this module's tests (building it once keeps them fast)."""
    d = make_database(pg)
    with psycopg.connect(d.conninfo, autocommit=True) as c:
        c.execute("SET maintenance_work_mem = '64MB'")
        c.execute(FAULTS)
        c.execute("ANALYZE parents, children, pairs, pair_refs, tail_refs, big_ids, bloated")
        with pytest.raises(psycopg.errors.UniqueViolation):  # a failed concurrent build leaves an invalid index
            c.execute("CREATE UNIQUE INDEX CONCURRENTLY children_parent_unique ON children (parent_id)")
        for i in range(30):  # the primary key of parents is used; parents_name_id too
            c.execute("SELECT * FROM parents WHERE name = %s AND id = %s", (f"p{i}", i))
        c.execute("SELECT pg_stat_force_next_flush()")
    yield d
    drop_database(d)


def config_for(d, tmp_path, **target):
    return from_dict({"targets": {"test": {"dsn": d.conninfo, "plan": "free", "compute": "micro", **target}},
                      "history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"}})


def run(check_id, config, params=None, **thresholds):
    check = checks.get(check_id)
    with connect(config.target("test")) as session:
        ctx = CheckContext(db=session, target=config.target("test"), params=params or {}, config=config)
        return run_check(check, ctx, check.resolve_thresholds(thresholds))


def by_object(result):
    return {o: f for f in result.findings for o in f.objects}


def test_unused_index_soft_while_stats_are_young(faulty, tmp_path):
    config = config_for(faulty, tmp_path)
    young = run("indexes.unused", config, min_size_bytes=0)
    found = by_object(young)
    assert "public.children_payload" in found and "public.parents_name_id" not in found
    assert found["public.children_payload"].severity.value == "info"
    assert "days old" in found["public.children_payload"].detail
    assert "public.parents_pkey" not in found  # primary keys enforce a constraint
    grown = by_object(run("indexes.unused", config, min_size_bytes=0, min_stats_age_days=0))
    assert grown["public.children_payload"].severity.value == "warning"
    assert "DROP INDEX CONCURRENTLY public.children_payload" in grown["public.children_payload"].remediation


def test_unused_after_stats_reset_is_info_again(pg, tmp_path):
    d = make_database(pg)
    try:
        d.execute("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 50000) g;"
                  "CREATE INDEX t_v ON t (v); SELECT pg_stat_reset()")
        f = by_object(run("indexes.unused", config_for(d, tmp_path), min_size_bytes=0, min_stats_age_days=0.1))
        assert f["public.t_v"].severity.value == "info" and "reset" in f["public.t_v"].detail
    finally:
        drop_database(d)


def test_duplicate_and_prefix_indexes(faulty, tmp_path):
    r = run("indexes.duplicate", config_for(faulty, tmp_path))
    found = by_object(r)
    assert set(found) == {"public.children_payload_twin", "public.parents_name"}
    assert "identical" in found["public.children_payload_twin"].title
    assert "parents_name_id" in found["public.parents_name"].title


def test_invalid_index_from_failed_concurrent_build(faulty, tmp_path):
    found = by_object(run("indexes.invalid", config_for(faulty, tmp_path)))
    assert list(found) == ["public.children_parent_unique"]
    assert "CONCURRENTLY" in found["public.children_parent_unique"].remediation


def test_unindexed_foreign_keys(faulty, tmp_path):
    r = run("indexes.unindexed_fk", config_for(faulty, tmp_path))
    titles = {f.title.split(":")[0]: f for f in r.findings}
    assert set(titles) == {"public.children.children_parent_id_fkey", "public.tail_refs.tail_refs_parent_id_fkey"}
    assert titles["public.children.children_parent_id_fkey"].severity.value == "info"  # small table, few deletes
    heavy = run("indexes.unindexed_fk", config_for(faulty, tmp_path), min_table_bytes=1024 * 1024)
    sev = {f.title.split(":")[0]: f.severity.value for f in heavy.findings}
    assert sev["public.children.children_parent_id_fkey"] == "warning"  # 40,000 rows, several MB
    assert sev["public.tail_refs.tail_refs_parent_id_fkey"] == "info"


def test_sequence_near_int4_limit(faulty, tmp_path):
    r = run("sequences.exhaustion", config_for(faulty, tmp_path))
    found = by_object(r)
    f = found["public.big_ids_seq"]
    assert f.severity.value == "critical" and f.value == pytest.approx(100 * 2000000001 / INT4_MAX, abs=0.01)
    assert "integer" in f.detail and "ALTER COLUMN id TYPE bigint" in f.remediation
    assert "public.fine_ids_id_seq" not in found


def test_bloat_from_mass_updates_matches_a_real_rewrite(faulty, tmp_path):
    r = run("tables.bloat", config_for(faulty, tmp_path), min_bytes=1024 * 1024)
    found = by_object(r)
    f = found["public.bloated"]
    assert f.severity.value == "warning" and 60 <= f.value <= 90
    est = r.data[(r.data["kind"] == "table")].set_index("table_name").loc["bloated"]
    # the truth: what a rewrite returns (the table's size minus a compact copy's), and pgstattuple's count
    faulty.execute("CREATE TABLE bloated_copy AS SELECT * FROM bloated")
    try:
        rewrite = faulty.execute("SELECT pg_relation_size('bloated') - pg_relation_size('bloated_copy')")[0][0]
        dead_free = faulty.execute("SELECT free_space + dead_tuple_len FROM pgstattuple('bloated')")[0][0]
    finally:
        faulty.execute("DROP TABLE bloated_copy")
    print("bloat estimate", est["bloat_bytes"], "rewrite", rewrite, "pgstattuple", dead_free)
    assert est["bloat_bytes"] == pytest.approx(rewrite, rel=0.10)  # the error the check's text states
    assert est["bloat_bytes"] == pytest.approx(dead_free, rel=0.20)
    # the primary key's bloat against a freshly built copy of it
    idx = r.data[(r.data["kind"] == "index")].set_index("index_name").loc["bloated_pkey"]
    faulty.execute("CREATE INDEX bloated_fresh ON bloated (id)")
    try:
        real = faulty.execute("SELECT pg_relation_size('bloated_pkey') - pg_relation_size('bloated_fresh')")[0][0]
    finally:
        faulty.execute("DROP INDEX bloated_fresh")
    assert idx["bloat_bytes"] == pytest.approx(real, rel=0.10)
    assert "public.parents" not in found


def test_dead_tuples_with_autovacuum_off(faulty, tmp_path):
    r = run("vacuum.dead_tuples", config_for(faulty, tmp_path))
    f = by_object(r)["public.bloated"]
    assert f.severity.value == "critical" and "autovacuum is OFF" in f.detail
    assert "RESET (autovacuum_enabled)" in f.remediation


def test_never_analyzed(faulty, tmp_path):
    r = run("vacuum.stale_stats", config_for(faulty, tmp_path))
    never = [f for f in r.findings if "never analyzed" in f.title]
    assert never and "public.never_analyzed" in never[0].objects and "public.bloated" not in never[0].objects


def test_database_size_against_plan_and_override(faulty, tmp_path):
    ok = run("storage.database_size", config_for(faulty, tmp_path))
    assert ok.findings[0].severity.value == "ok" and "free plan database size" in ok.findings[0].title
    assert "supabase-pricing-2026.md" in ok.findings[0].detail
    size = ok.data.attrs["size_bytes"]
    tight = run("storage.database_size", config_for(faulty, tmp_path, limits={"database_size_bytes": size * 1.1}))
    assert tight.findings[0].severity.value == "warning"
    pro = run("storage.database_size", config_for(faulty, tmp_path), params={"plan": "pro"})
    assert [x for x in pro.data["limit"]] == ["read-only at 95% of disk (spend cap on: no auto-scaling)",
                                              "pro plan included disk"]


def test_growth_forecast_from_real_growth_and_without_history(pg, tmp_path):
    d = make_database(pg)
    try:
        d.execute("CREATE TABLE events (id bigserial PRIMARY KEY, body text)")
        config = config_for(d, tmp_path)
        none = run("storage.growth_forecast", config)
        assert none.findings[0].severity.value == "info" and "opsbook snapshot" in none.findings[0].detail
        store = history.open_store(config)
        start = time.time() - 12 * DAY
        for day in range(12):
            d.execute("INSERT INTO events (body) SELECT repeat(md5(g::text), 8) FROM generate_series(1, 4000) g")
            history.take_snapshot(config, "test", store=store, as_of=start + day * DAY, simulated=True)
        sizes = store.series("test", "database_size_bytes")["value"]
        per_day = (sizes.iloc[-1] - sizes.iloc[0]) / 11
        limit = sizes.iloc[-1] + 50 * per_day  # 50 days of room at the observed rate
        r = run("storage.growth_forecast", config_for(d, tmp_path, limits={"database_size_bytes": limit}))
        f = r.findings[0]
        assert f.severity.value == "warning"  # 80% is well inside 90 days
        assert f.value == pytest.approx(50, rel=0.2)
        assert "simulated clock" in f.detail
        row = r.data.iloc[0]
        assert row["days_to_full_earliest"] <= row["days_to_full"] <= row["days_to_full_latest"]
    finally:
        drop_database(d)


def test_connections_headroom_uses_history_peak(pg, tmp_path):
    d = make_database(pg)
    try:
        config = config_for(d, tmp_path, limits={"max_connections": 10})
        extra = [d.connect() for _ in range(8)]
        history.take_snapshot(config, "test")
        for c in extra:
            c.close()
        history.take_snapshot(config, "test")
        r = run("connections.headroom", config)
        assert r.data.attrs["peak"] >= 9
        f = r.findings[0]
        assert f.severity.value in ("warning", "critical") and "peak" in f.title
        assert "pooler" in set(" ".join(r.data["limit"]).split())
    finally:
        drop_database(d)


SUPABASE = """
CREATE SCHEMA auth; CREATE SCHEMA storage;
CREATE TABLE auth.users (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text, last_sign_in_at timestamptz);
INSERT INTO auth.users (email, last_sign_in_at)
  SELECT 'u' || g || '@x.test', CASE WHEN g <= 60 THEN now() - interval '2 days' ELSE now() - interval '90 days' END
  FROM generate_series(1, 100) g;
CREATE TABLE storage.buckets (id text PRIMARY KEY, public boolean DEFAULT false);
CREATE TABLE storage.objects (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), bucket_id text REFERENCES storage.buckets,
                              name text, metadata jsonb);
INSERT INTO storage.buckets VALUES ('photos', true), ('pdfs', false), ('empty', false);
INSERT INTO storage.objects (bucket_id, name, metadata)
  SELECT CASE WHEN g % 3 = 0 THEN 'pdfs' ELSE 'photos' END, 'f' || g, jsonb_build_object('size', 3000000)
  FROM generate_series(1, 300) g;
"""


def test_mau_and_storage_objects_against_quotas(pg, tmp_path):
    d = make_database(pg)
    try:
        d.execute(SUPABASE)
        config = config_for(d, tmp_path)
        mau = run("auth.mau", config)
        assert mau.findings[0].severity.value == "ok" and mau.findings[0].title.startswith("60 monthly active")
        tight = run("auth.mau", config_for(d, tmp_path, limits={"mau": 70}))
        assert tight.findings[0].severity.value == "warning"
        objects = run("storage.objects", config)  # 900 MB of the free plan's 1 GB
        f = objects.findings[0]
        assert f.severity.value == "warning" and 83 < f.value < 85
        assert list(objects.data["bucket_id"]) == ["photos", "pdfs", "empty"]
    finally:
        drop_database(d)


def test_supabase_checks_skip_on_plain_postgres(faulty, tmp_path):
    for cid in ("auth.mau", "storage.objects"):
        f = run(cid, config_for(faulty, tmp_path)).findings[0]
        assert f.severity.value == "info" and f.skipped


@pytest.mark.parametrize("check_id", ["indexes.unused", "indexes.duplicate", "indexes.invalid", "indexes.unindexed_fk",
                                      "sequences.exhaustion", "tables.bloat", "vacuum.dead_tuples",
                                      "vacuum.stale_stats", "tables.no_primary_key"])
def test_clean_database_gives_ok(check_id, any_db, tmp_path):
    any_db.execute("CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v int)")
    r = run(check_id, config_for(any_db, tmp_path))
    assert [f.severity.value for f in r.findings] == ["ok"]


def test_judges_on_hand_made_rows():
    from opsbook.checks.sequences import judge_sequences

    df = pd.DataFrame([{"schema_name": "public", "sequence_name": "s", "pct_used": 80.0, "last_value": 8.0,
                        "usable_max": 10.0, "table_schema": None, "table_name": None, "column_name": None,
                        "column_max": 10.0, "sequence_max": 10.0, "column_type": None, "days_left": 12.0}])
    f = judge_sequences(df)[0]
    assert f.severity.value == "warning" and "12 days" in f.detail


KEYLESS = """
CREATE EXTENSION IF NOT EXISTS pgstattuple;
CREATE TABLE loose (a int, b text);
CREATE TABLE coded (code text NOT NULL, n int);
CREATE UNIQUE INDEX coded_code ON coded (code);
CREATE UNIQUE INDEX coded_n ON coded (n);  -- nullable: cannot become the key
CREATE TABLE "Mixed" (code text NOT NULL CONSTRAINT "Mixed_code_key" UNIQUE);
CREATE TABLE logs (id int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE logs_2026 PARTITION OF logs FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE UNIQUE INDEX logs_id_at ON logs (id, at);
INSERT INTO loose SELECT g, 'x' FROM generate_series(1, 300) g;
ANALYZE loose;
-- not flagged: a key; a partition whose parent has one; an extension's table; extension and platform schemas
CREATE TABLE keyed (id int PRIMARY KEY);
CREATE TABLE measures (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE measures_2026 PARTITION OF measures FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE ext_owned (x int);
ALTER EXTENSION pgstattuple ADD TABLE ext_owned;
CREATE SCHEMA pgmq; CREATE TABLE pgmq.q_jobs (msg jsonb);
CREATE SCHEMA auth; CREATE TABLE auth.audit (payload json);
"""


@pytest.fixture
def keyless(pg):
    d = make_database(pg)
    d.execute(KEYLESS)
    yield d
    drop_database(d)


def _statement(remediation: str) -> str:
    return remediation.split(";")[0] + ";"


def test_tables_without_a_primary_key_are_info_with_the_index_that_could_become_it(keyless, tmp_path):
    config = config_for(keyless, tmp_path)
    r = run("tables.no_primary_key", config)
    found = by_object(r)
    assert set(found) == {"public.loose", "public.coded", "public.Mixed", "public.logs"}  # no partition, no key
    assert {f.severity.value for f in r.findings} == {"info"}
    assert found["public.loose"].title == "table public.loose has no primary key"
    assert "300 rows" in found["public.loose"].detail
    assert found["public.loose"].remediation.startswith("ALTER TABLE public.loose ADD PRIMARY KEY (<columns")
    coded = found["public.coded"]
    assert coded.value == "coded_code" and "coded_n" not in coded.remediation + coded.detail  # nullable: not offered
    assert _statement(coded.remediation) == "ALTER TABLE public.coded ADD CONSTRAINT coded_code PRIMARY KEY USING INDEX coded_code;"
    assert "unique constraint Mixed_code_key (index Mixed_code_key)" in found["public.Mixed"].remediation
    assert _statement(found["public.Mixed"].remediation) == 'ALTER TABLE public."Mixed" ADD PRIMARY KEY (code);'
    logs = found["public.logs"]
    assert "partitioned table" in logs.title and "1 partitions" in logs.title and "logs_id_at" in logs.remediation
    assert _statement(logs.remediation) == "ALTER TABLE public.logs ADD PRIMARY KEY (id, at);"
    # each statement proposed runs as written, and the table is no longer reported
    for name in ("public.coded", "public.Mixed", "public.logs"):
        keyless.execute(_statement(found[name].remediation))
    assert set(by_object(run("tables.no_primary_key", config))) == {"public.loose"}


def test_a_role_without_privileges_sees_every_keyless_table(keyless, tmp_path):
    """Catalogue only: a login role with no grant on any table is told the same (nothing to call partial)."""
    keyless.execute("CREATE ROLE keyless_reader LOGIN")
    try:
        reader = run("tables.no_primary_key", from_dict({"targets": {"test": {
            "dsn": keyless.conninfo + " user=keyless_reader", "plan": "free", "compute": "micro"}}}))
        assert set(by_object(reader)) == {"public.loose", "public.coded", "public.Mixed", "public.logs"}
        assert not [f for f in reader.findings if f.skipped]
    finally:
        keyless.execute("DROP ROLE keyless_reader")


@pytest.mark.slow
def test_no_primary_key_on_a_hot_standby_names_the_primary(tmp_path_factory, tmp_path):
    """Catalogue only, so a standby answers as its primary does; the statement goes to the primary."""
    primary = _server(tmp_path_factory, "npk-primary", wal_level="replica", max_wal_senders="4", hot_standby="on")
    d = make_database(primary)
    standby = make_standby(primary)
    try:
        d.execute("CREATE TABLE coded (code text NOT NULL, n int); CREATE UNIQUE INDEX coded_code ON coded (code)")
        mirror = Database(standby, d.name)
        # waited on what the test needs (with synchronous_commit off, pg_current_wal_lsn() can lag the commit)
        wait_for("the standby to replay the table and its index", lambda: _one(
            mirror.conninfo, "SELECT pg_is_in_recovery() AND to_regclass('public.coded_code') IS NOT NULL"))
        r = run("tables.no_primary_key", config_for(mirror, tmp_path))
        f = by_object(r).get("public.coded")
        assert f is not None, [(x.severity.value, x.title) for x in r.findings]
        port = str(primary.configured_port())
        assert f.severity.value == "info" and port in f.remediation and "ALTER TABLE" not in f.remediation
        assert "ADD CONSTRAINT coded_code PRIMARY KEY USING INDEX coded_code" in f.detail
    finally:
        standby.destroy()
        drop_database(d)
        primary.destroy()
        shutil.rmtree(primary.data_dir.parent, ignore_errors=True)
