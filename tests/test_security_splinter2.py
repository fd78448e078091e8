"""Splinter's lints 0018, 0019, 0021, 0022, 0026 and 0027, realtime's policies, bucket prefixes, an empty
pgrst.db_schemas, 0002's invoker view and the report read once: one database holding one instance of each lint, a
clean control, and the report rendered through the runner (embedded PostgreSQL 18 and PostgreSQL 15)."""
from __future__ import annotations

import re
import uuid

import pytest

from opsbook.checks.security import audit
from opsbook.core.findings import Severity
from opsbook.run.context import Runbook
from opsbook.run.runner import run_runbook

SIX = ("security.unsupported_reg_types", "security.queue_exposed", "security.auth_unique_fkey",
       "security.extension_outdated", "security.graphql_anon_exposed", "security.graphql_authenticated_exposed")




# Supabase's shapes as plain schemas, tables and functions (pgmq and pg_graphql are not in plain PostgreSQL)
PLATFORM = """
CREATE SCHEMA auth; CREATE SCHEMA extensions; CREATE SCHEMA realtime; CREATE SCHEMA pgmq; CREATE SCHEMA pgmq_public;
GRANT USAGE ON SCHEMA public TO anon, authenticated;
CREATE TABLE auth.users (id uuid PRIMARY KEY, email text UNIQUE, phone text UNIQUE);
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE SET search_path = ''
  AS $$ SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE SET search_path = ''
  AS $$ SELECT nullif(current_setting('request.jwt.claim.role', true), '') $$;
CREATE TABLE pgmq.meta (queue_name text PRIMARY KEY);
ALTER TABLE pgmq.meta ENABLE ROW LEVEL SECURITY;  -- RLS on, no policy: pgmq's own, never rls_no_policy
CREATE TABLE pgmq.q_jobs (msg_id bigserial PRIMARY KEY, message jsonb);
CREATE FUNCTION pgmq_public.read(queue_name text, sleep_seconds int, n int) RETURNS SETOF jsonb LANGUAGE sql
  SET search_path = '' AS $$ SELECT message FROM pgmq.q_jobs LIMIT n $$;
REVOKE EXECUTE ON FUNCTION pgmq_public.read(text, int, int) FROM PUBLIC;
CREATE TABLE public.catalog (id int PRIMARY KEY, name text);
CREATE TABLE public.members_only (id int PRIMARY KEY, body text);
ALTER TABLE public.catalog ENABLE ROW LEVEL SECURITY; ALTER TABLE public.members_only ENABLE ROW LEVEL SECURITY;
CREATE POLICY "catalog readable" ON public.catalog FOR SELECT TO anon USING (id > 0);
CREATE POLICY "members read" ON public.members_only FOR SELECT TO authenticated USING ((SELECT auth.uid()) IS NOT NULL);
-- pg_graphql's catalogue row: what the checks read (a fake extension: no control file, nothing to call)
SET allow_system_table_mods = on;
INSERT INTO pg_catalog.pg_extension (oid, extname, extowner, extnamespace, extrelocatable, extversion)
  VALUES (3999999999, 'pg_graphql', 10, 'extensions'::regnamespace, false, '1.5.11');
RESET allow_system_table_mods;
"""

# one instance of each lint
FLAWED = """
CREATE TABLE public.handlers (id int PRIMARY KEY, fn regproc);                             -- 0018
GRANT USAGE ON SCHEMA pgmq, pgmq_public TO anon, authenticated;                            -- 0019
GRANT SELECT, INSERT, DELETE ON pgmq.q_jobs TO anon;
GRANT EXECUTE ON FUNCTION pgmq_public.read(text, int, int) TO anon;
CREATE TABLE public.profiles (id int PRIMARY KEY, email text REFERENCES auth.users (email)); -- 0021
CREATE EXTENSION amcheck VERSION '1.0' SCHEMA extensions;                                  -- 0022
GRANT SELECT ON public.catalog TO anon;                                                    -- 0026
GRANT SELECT ON public.members_only TO authenticated;                                      -- 0027
"""

# the same shapes, each one right
CLEAN = """
CREATE TABLE public.handlers (id int PRIMARY KEY, fn text);
GRANT USAGE ON SCHEMA pgmq, pgmq_public TO anon, authenticated;
ALTER TABLE pgmq.q_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY "own jobs" ON pgmq.q_jobs FOR SELECT TO anon USING (false);
GRANT SELECT ON pgmq.q_jobs TO anon;
GRANT EXECUTE ON FUNCTION pgmq_public.read(text, int, int) TO anon;
CREATE TABLE public.profiles (id uuid PRIMARY KEY REFERENCES auth.users (id));
CREATE EXTENSION amcheck SCHEMA extensions;
"""


def audit_of(db, **target):
    rb = Runbook("security-audit", "test", config=db.config(**target))
    rb.connect()
    audit.run(rb)
    rb.close()
    return rb


def serious(rb, checks=SIX):
    return sorted((f.check, f.severity.value, tuple(f.objects)) for f in rb.findings
                  if f.check in checks and f.severity is not Severity.OK and not f.skipped)


def test_one_instance_of_each_lint_then_a_clean_control(api_roles, any_db):
    any_db.execute(PLATFORM + FLAWED)
    rb = audit_of(any_db, api_schemas=["public", "pgmq_public"])
    assert serious(rb) == [
        ("security.auth_unique_fkey", "critical", ("public.profiles",)),
        ("security.extension_outdated", "warning", ("amcheck",)),
        ("security.graphql_anon_exposed", "warning", ("public.catalog",)),
        ("security.graphql_authenticated_exposed", "warning", ("public.members_only",)),
        ("security.queue_exposed", "critical", ("pgmq.q_jobs",)),
        ("security.unsupported_reg_types", "warning", ("public.handlers",)),
    ], [(f.check, f.severity.value, f.title, f.skipped) for f in rb.findings if f.check in SIX]
    queue = [f for f in rb.findings if f.check == "security.queue_exposed"][0]
    assert "pgmq_public.{read}" in queue.detail and "anon" in queue.title
    assert "pgmq.q_jobs" in set(audit.anon_exposure(rb)["object"])
    # pgmq's own table (RLS on, no policy) is no rls_no_policy noise
    assert not [f for f in rb.findings if f.check == "security.rls_no_policy" and "pgmq.meta" in f.objects]
    # each of the six says which lint of the advisor it answers
    table = audit.compared_with_advisor(rb).set_index("lint")
    assert table.loc["0019", "opsbook found"] == "1 critical" and table.loc["0022", "opsbook found"] == "1 warning"
    assert table.loc["0001", "opsbook check"] == "indexes.unindexed_fk"


def test_clean_control_has_none_of_the_six(api_roles, any_db):
    any_db.execute(PLATFORM + CLEAN)
    rb = audit_of(any_db, api_schemas=["public", "pgmq_public"])
    assert serious(rb) == []
    assert not [f for f in rb.findings if f.check in SIX and f.skipped]  # each one judged, none skipped


def test_without_pgmq_or_pg_graphql_they_do_not_apply(api_roles, any_db):
    any_db.execute("CREATE TABLE public.t (id int PRIMARY KEY); GRANT SELECT ON public.t TO anon")
    rb = audit_of(any_db)
    # nothing can be exposed through what is not there: a true answer (ok), not a gap in what this role sees
    for check in ("security.queue_exposed", "security.graphql_anon_exposed", "security.graphql_authenticated_exposed"):
        fs = [f for f in rb.findings if f.check == check]
        assert [(f.severity.value, f.title.split(":")[0], f.skipped) for f in fs] == [("ok", "not applicable", None)]
    [fkey] = [f for f in rb.findings if f.check == "security.auth_unique_fkey"]  # as auth_users_exposed says it
    assert fkey.skipped.startswith("does not apply")
    assert not audit.unseen(rb)  # not applicable is not "could not see"
    table = audit.compared_with_advisor(rb).set_index("lint")
    assert table.loc["0026", "opsbook found"] == "not applicable here"


def test_realtime_policy_calling_auth_role_per_row_is_found(api_roles, any_db):
    any_db.execute(PLATFORM + """
        CREATE TABLE realtime.messages (id bigserial PRIMARY KEY, topic text, extension text);
        ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;
        CREATE POLICY "signed in hear" ON realtime.messages FOR SELECT TO authenticated
          USING (auth.role() = 'authenticated');""")
    rb = audit_of(any_db)
    hits = [f for f in rb.findings if f.check == "security.rls_initplan" and "realtime.messages" in f.objects]
    assert len(hits) == 1 and hits[0].severity is Severity.WARNING and "auth.role()" in hits[0].title


def test_bucket_listing_names_the_prefix_and_warns_for_signed_in(api_roles, any_db):
    any_db.execute("""
        CREATE SCHEMA auth; CREATE SCHEMA storage; GRANT USAGE ON SCHEMA storage TO anon, authenticated;
        CREATE TABLE auth.users (id uuid PRIMARY KEY);
        CREATE TABLE storage.buckets (id text PRIMARY KEY, name text NOT NULL, public boolean DEFAULT false);
        CREATE TABLE storage.objects (id serial PRIMARY KEY, bucket_id text REFERENCES storage.buckets, name text,
                                      owner uuid);
        ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
        INSERT INTO storage.buckets VALUES ('docs', 'docs', true), ('shared', 'shared', true);
        CREATE POLICY "public folder" ON storage.objects FOR SELECT TO anon
          USING (bucket_id = 'docs' AND name LIKE 'public/%');
        CREATE POLICY "members list" ON storage.objects FOR SELECT TO authenticated USING (bucket_id = 'shared');""")
    rb = audit_of(any_db)
    got = {f.objects[0]: (f.severity.value, f.title) for f in rb.findings if f.check == "security.bucket_listing"}
    assert got == {
        "bucket:docs": ("warning", "public bucket docs: anon can list objects under public/"),
        "bucket:shared": ("warning", "public bucket shared: any signed-in user can list every object"),
    }


def test_empty_pgrst_db_schemas_is_said_not_taken_for_unset(api_roles, any_db):
    any_db.execute(f"""ALTER DATABASE "{any_db.name}" SET pgrst.db_schemas = ''""")
    rb = Runbook("security-audit", "test", config=any_db.config())
    rb.connect()
    rb.run(["security.scope"])
    rb.close()
    title = [f.title for f in rb.findings if f.check == "security.scope"][0]
    assert "set but empty" in title and "no pgrst.db_schemas setting" not in title, title


def test_invoker_view_over_auth_users_is_reported_with_the_grant_that_would_expose_it(api_roles, any_db):
    any_db.execute("""
        CREATE SCHEMA auth; GRANT USAGE ON SCHEMA auth TO anon;
        CREATE TABLE auth.users (id uuid PRIMARY KEY, email text);
        CREATE VIEW public.user_list WITH (security_invoker = on) AS SELECT id, email FROM auth.users;
        GRANT SELECT ON public.user_list TO anon;""")
    rb = audit_of(any_db)
    hits = [f for f in rb.findings if f.check == "security.auth_users_exposed" and f.severity is not Severity.OK]
    assert [(f.severity.value, f.objects) for f in hits] == [("warning", ["public.user_list"])]
    assert "GRANT SELECT ON auth.users TO anon" in hits[0].detail and "ERROR (0002)" in hits[0].detail
    assert "public.user_list" not in set(audit.anon_exposure(rb)["object"])  # not readable through it today
    any_db.execute("GRANT SELECT ON auth.users TO anon")
    again = audit_of(any_db)
    assert [f.severity.value for f in again.findings
            if f.check == "security.auth_users_exposed" and f.objects == ["public.user_list"]] == ["critical"]


def test_pg_monitor_only_role_gets_no_false_all_clear(api_roles, any_db):
    """Supabase grants USAGE on auth and storage to its own roles only: a pg_monitor-only role sees the catalogue,
    not Storage's rows; the verdict says the audit is incomplete instead of 'anon can reach nothing'."""
    any_db.execute(PLATFORM + FLAWED + """
        CREATE SCHEMA storage;
        CREATE TABLE storage.buckets (id text PRIMARY KEY, name text NOT NULL, public boolean DEFAULT false);
        CREATE TABLE storage.objects (id serial PRIMARY KEY, bucket_id text, name text, owner uuid);
        REVOKE ALL ON SCHEMA auth, storage FROM PUBLIC;""")
    role = f"t_mon_{uuid.uuid4().hex[:8]}"
    any_db.execute(f'CREATE ROLE {role} LOGIN IN ROLE pg_monitor')
    try:
        from opsbook.config.file import from_dict

        config = from_dict({"targets": {"test": {"dsn": any_db.server.conninfo(dbname=any_db.name, user=role),
                                                 "api_schemas": ["public", "pgmq_public"]}}})
        rb = Runbook("security-audit", "test", config=config)
        rb.connect()
        audit.run(rb)
        exposed = audit.anon_exposure(rb)
        blind = audit.unseen(rb)
        headlines = []
        rb.verdict = lambda headline="", top=8: headlines.append(headline)
        audit.show_verdict(rb)
        rb.close()
        assert headlines[0].startswith("anon (anyone with the public API key) can reach at least"), headlines
        assert "Incomplete" in headlines[0] and "security.bucket_listing" in headlines[0]
        assert "security.bucket_listing" in blind
        # the catalogue-only checks still see what anon reaches: no all-clear
        assert {"pgmq.q_jobs"} <= set(exposed["object"])
        assert serious(rb) == serious(audit_of(any_db, api_schemas=["public", "pgmq_public"]))
    finally:
        any_db.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_report_prints_each_policy_table_once_and_no_raw_dict(api_roles, any_db, tmp_path):
    db = any_db
    db.execute(PLATFORM + FLAWED + """
        CREATE TABLE public.items (id int PRIMARY KEY, user_id uuid);
        ALTER TABLE public.items ENABLE ROW LEVEL SECURITY; GRANT SELECT ON public.items TO authenticated;
        CREATE POLICY per_row_policy ON public.items FOR SELECT TO authenticated USING (user_id = auth.uid());
        CREATE POLICY harmless_policy ON public.items FOR UPDATE TO authenticated
          USING (user_id = (SELECT auth.uid()));""")
    result = run_runbook("security-audit", "test", {}, config=db.config(), output_dir=tmp_path)
    assert result.exit_code == 0 and result.sidecar["status"] == "ok", result.sidecar["error"]
    html = result.html_path.read_text()
    cell = lambda text: len(re.findall(r"<td[^>]*>\s*" + re.escape(text) + r"\s*</td>", html))  # noqa: E731
    assert cell("per_row_policy") == 1  # in the rls_initplan section only
    assert cell("harmless_policy") == 0  # behind no finding: in no section's table
    assert "{&#x27;security_" not in html and "{'security_" not in html  # the record is a table, not a dict
    assert cell("security_findings_critical") == 1
    assert "Compared with Supabase" in html and cell("insecure_queue_exposed_in_api") == 1


# ---------------------------------------------------------------- judges on hand-made rows
def _queue_rows(**over):
    import pandas as pd

    row = {"schema_name": "pgmq", "table_name": "q_jobs", "kind": "queue", "rls_enabled": False, "role_name": "anon",
           "schema_usage": True, "privileges": "SELECT", "direct": False, "rpc_functions": "", "definer_functions": ""}
    row.update(over)
    return pd.DataFrame([row])


@pytest.mark.parametrize("over, expected", [
    ({}, [("info", "not reachable")]),                                                   # granted, not served
    ({"direct": True}, [("critical", "open to anon")]),                                  # schema pgmq exposed
    ({"direct": True, "schema_usage": False}, [("info", "not reachable")]),              # no USAGE on pgmq
    ({"rpc_functions": "read"}, [("critical", "open to anon")]),                         # pgmq_public.read over /rpc
    ({"rpc_functions": "read", "rls_enabled": True}, [("ok", "no queue")]),              # RLS decides
    ({"rls_enabled": True, "privileges": "", "definer_functions": "read"}, [("critical", "open to anon")]),  # definer
])
def test_queue_judge(over, expected):
    from opsbook.checks.security.queues import judge_queue_exposure

    got = [(f.severity.value, f.title) for f in judge_queue_exposure(_queue_rows(**over))]
    assert len(got) == len(expected), got
    for (severity, title), (want, text) in zip(got, expected):
        assert severity == want and text in title, got


@pytest.mark.parametrize("expr, prefix", [
    ("((bucket_id = 'docs'::text) AND (name ~~ 'public/%'::text))", "public/"),
    ("starts_with(name, 'shared/'::text)", "shared/"),
    ("((bucket_id = 'docs'::text) AND ((storage.foldername(name))[1] = 'public'::text))", "public/"),
    ("((bucket_id = 'docs'::text) OR (name ~~ 'public/%'::text))", None),  # OR-ed: no limit
    ("(bucket_id = 'docs'::text)", None),
    (None, None),
])
def test_listing_prefix(expr, prefix):
    from opsbook.checks.security.buckets import listing_prefix

    assert listing_prefix(expr) == prefix


def test_the_advisor_table_names_every_lint_once_and_only_registered_checks():
    from opsbook.checks import load_all
    from opsbook.checks.security.advisor import LINTS

    assert [lint for lint, *_ in LINTS] == [f"{n:04d}" for n in range(1, 30)]
    assert {check for *_, check, _ in LINTS if check} - set(load_all()) == set()
