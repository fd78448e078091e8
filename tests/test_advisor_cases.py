"""Supabase's Security Advisor (splinter) lint by lint: one positive and one negative case per security lint id
0002-0029 (tests/fixtures/advisor_cases.sql, written from the lints' documentation), all side by side in one
database per server version (embedded PostgreSQL 18 and PostgreSQL 15), one security-audit run, then one assertion
per case: the object, the severity and the check id of the finding; for a negative, no finding of that check on
that object (and the check ran and judged, so that a skipped check cannot pass a negative).

Where opsbook and splinter differ (level or coverage), the case asserts opsbook's documented behaviour
(opsbook.checks.security.advisor.LINTS and the checks' descriptions) and its `why` says so.

Not here:
- 0012 auth_allow_anonymous_sign_ins is a setting of Supabase Auth (GoTrue), outside the database: no check can
  see it and no SQL can plant it.
- 0003 auth_rls_initplan and 0006 multiple_permissive_policies are performance lints in splinter, but opsbook runs
  them in the security audit (security.rls_initplan, security.multiple_permissive_policies): their cases are here.
- The performance lints are capacity-planning's (runbooks/capacity-planning.ipynb), tested with its checks in
  tests/test_capacity_checks.py: 0001 unindexed_foreign_keys -> indexes.unindexed_fk, 0005 unused_index ->
  indexes.unused, 0009 duplicate_index -> indexes.duplicate (lib/opsbook/checks/indexes.py), 0020 table_bloat ->
  tables.bloat (lib/opsbook/checks/tables.py), 0004 no_primary_key -> tables.no_primary_key
  (lib/opsbook/checks/keys.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import api_roles_on, drop_database, make_database
from opsbook.checks.security import audit
from opsbook.checks.security.advisor import LEVELS, LINTS
from opsbook.core.findings import Severity
from opsbook.run.context import Runbook

FIXTURE = Path(__file__).parent / "fixtures" / "advisor_cases.sql"
CHECK = {lint: check for lint, _, _, check, _ in LINTS}


class Case(NamedTuple):
    lint: str
    kind: str  # "positive", "negative", or "differs" (a case where opsbook and splinter part ways)
    check: str
    obj: str
    severity: str | None  # None: no finding of `check` on `obj`
    title: str = ""  # a part of the finding's title, where the object alone does not tell (0028 / 0029)
    why: str = ""


def case(lint, kind, obj, severity, title="", why="", check=None):
    return Case(lint, kind, check or CHECK[lint], obj, severity, title, why)


AGREES = "opsbook's level is splinter's"
CASES = [
    case("0002", "positive", "public.a02_pos", "critical", why=AGREES + " (ERROR)"),
    case("0002", "negative", "public.a02_neg", None, why="no API role may read the view"),
    case("0002", "differs", "public.a02_invoker", "warning",
         why="security_invoker view whose reader anon may not read auth.users: splinter ERROR; opsbook warning, "
             "nothing is readable through it until that grant (the finding names it)"),
    case("0003", "positive", "public.a03_pos", "warning", "auth.uid()", why=AGREES + " (WARN)"),
    case("0003", "negative", "public.a03_neg", None, why="auth.uid() wrapped as (SELECT auth.uid())"),
    case("0003", "positive", "realtime.messages", "warning", "auth.role()",
         why="realtime.messages' policies are users', kept as in splinter"),
    case("0006", "positive", "public.a06_pos", "warning", why=AGREES + " (WARN)"),
    case("0006", "negative", "public.a06_neg", None, why="the second policy is RESTRICTIVE, the third for anon"),
    case("0007", "positive", "public.a07_pos", "critical", why=AGREES + " (ERROR)"),
    case("0007", "negative", "public.a07_neg", None, why="row-level security on"),
    case("0008", "positive", "public.a08_pos", "info", why=AGREES + " (INFO)"),
    case("0008", "negative", "public.a08_neg", None, why="has a policy"),
    case("0010", "positive", "public.a10_pos", "critical", why=AGREES + " (ERROR)"),
    case("0010", "negative", "public.a10_neg", None, why="security_invoker = on"),
    case("0011", "positive", "public.a11_pos", "warning", why=AGREES + " (WARN)"),
    case("0011", "negative", "public.a11_neg", None, why="SET search_path = ''"),
    case("0013", "positive", "public.a13_pos", "critical", why=AGREES + " (ERROR)"),
    case("0013", "negative", "public.a13_neg", None, why="row-level security on, with a policy"),
    case("0013", "differs", "public.a13_column", "critical",
         why="a column-only SELECT grant: anon reads the column; splinter's table-privilege test misses it"),
    case("0013", "differs", "public.a13_parted", "critical",
         why="a partitioned parent without RLS: anon reads it; splinter looks at plain tables only"),
    case("0014", "positive", "pgstattuple", "warning", why=AGREES + " (WARN)"),
    case("0014", "negative", "pg_trgm", None, why="installed in schema extensions"),
    case("0015", "positive", "public.a15_pos", "critical", why=AGREES + " (ERROR)"),
    case("0015", "negative", "public.a15_neg", None, why="app_metadata (server-written)"),
    case("0016", "positive", "public.a16_pos", "warning", why=AGREES + " (WARN)"),
    case("0016", "negative", "public.a16_neg", None, why="granted to no API role"),
    case("0017", "positive", "public.a17_pos", "warning", why=AGREES + " (WARN)"),
    case("0017", "negative", "private.a17_neg", None, why="granted, in a schema the API does not serve"),
    case("0018", "positive", "public.a18_pos", "warning", why=AGREES + " (WARN)"),
    case("0018", "negative", "public.a18_neg", None, why="regclass and regtype: pg_upgrade carries them"),
    case("0019", "positive", "pgmq.q_a19_pos", "critical", why=AGREES + " (ERROR)"),
    case("0019", "negative", "pgmq.q_a19_neg", None, why="row-level security on; pgmq_public.read is invoker"),
    case("0021", "positive", "public.a21_pos", "critical", why=AGREES + " (ERROR)"),
    case("0021", "negative", "public.a21_neg", None, why="references auth.users (id), the primary key"),
    case("0022", "positive", "amcheck", "warning", why=AGREES + " (WARN)"),
    case("0022", "negative", "pg_trgm", None, why="at its default version"),
    case("0023", "positive", "public.a23_pos", "critical", why=AGREES + " (ERROR)"),
    case("0023", "negative", "public.a23_neg", None, why="row-level security on"),
    case("0023", "positive", "public.a23_names", "critical",
         why="splinter's whole names (bank_account, swift_code, auth_code, ssh_key) are opsbook's too"),
    case("0023", "differs", "public.a23_words", "critical",
         why="password_hash: opsbook matches the word password in a longer name; splinter matches whole names only"),
    case("0024", "positive", "public.a24_pos", "warning", why=AGREES + " (WARN)"),
    case("0024", "negative", "public.a24_neg", None, why="USING and WITH CHECK depend on the user"),
    case("0024", "differs", "public.a24_read", "info",
         why="a constant-true SELECT policy: splinter leaves reads out; opsbook says info (public read may be "
             "intended)"),
    case("0025", "positive", "bucket:a25_pos", "warning", why=AGREES + " (WARN)"),
    case("0025", "negative", "bucket:a25_neg", None, why="public bucket, listing limited to the owner"),
    case("0026", "positive", "public.a26_pos", "warning", why=AGREES + " (WARN)"),
    case("0026", "negative", "public.a26_neg", None, why="granted to service_role only"),
    case("0026", "differs", "private.a26_no_usage", None,
         why="SELECT granted but no USAGE on the schema: introspection cannot show it; splinter counts the grant"),
    case("0026", "differs", "public.a13_parted", None,
         why="a partitioned parent: pg_graphql leaves partitioned tables out of its schema; splinter lists them"),
    case("0027", "positive", "public.a27_pos", "warning", why=AGREES + " (WARN)"),
    case("0027", "negative", "public.a27_neg", None, why="anon's grant, not authenticated's"),
    case("0028", "positive", "public.a28_pos", "warning", "callable by anon",
         why=AGREES + " (WARN); one opsbook check for 0028 and 0029, naming the roles"),
    case("0028", "negative", "public.a28_neg", None, why="SECURITY INVOKER"),
    case("0029", "positive", "public.a29_pos", "warning", "callable by authenticated",
         why=AGREES + " (WARN); revoked from PUBLIC, granted to authenticated only"),
    case("0029", "negative", "public.a29_neg", None, why="executable by service_role only"),
]


@pytest.fixture(scope="module", params=["embedded", "pg15"])
def audited(request):
    """The fixture's database on one server version, audited once: (server label, the runbook after the run)."""
    server = request.getfixturevalue("pg" if request.param == "embedded" else "pg15")
    with api_roles_on(server):
        db = make_database(server)
        try:
            db.execute(FIXTURE.read_text())
            rb = Runbook("security-audit", "test", config=db.config(api_schemas=["public", "pgmq_public"]))
            rb.connect()
            audit.run(rb)
            rb.close()
            yield rb
        finally:
            drop_database(db)


@pytest.mark.parametrize("c", CASES, ids=[f"{c.lint}-{c.kind}-{c.obj}" for c in CASES])
def test_advisor_case(audited, c: Case):
    mine = [f for f in audited.findings if f.check == c.check]
    # the check ran and judged: a negative must not pass because the check was skipped
    assert mine and not [f.skipped for f in mine if f.skipped], [(f.title, f.skipped) for f in mine]
    hits = [(f.severity.value, f.title) for f in mine if c.obj in f.objects and f.severity is not Severity.OK]
    if c.severity is None:
        assert hits == [], (c.why, hits)
    else:
        assert [s for s, _ in hits] == [c.severity], (c.why, hits)
        assert c.title in hits[0][1], hits


def test_every_security_lint_has_a_positive_and_a_negative():
    covered = {(c.lint, c.kind) for c in CASES}
    performance = {"0001", "0004", "0005", "0009", "0020"}
    outside = {"0012"}  # Supabase Auth's setting
    for lint, _, level, check, note in LINTS:
        if lint in performance | outside:
            assert not check.startswith("security."), lint
            continue
        assert {(lint, "positive"), (lint, "negative")} <= covered, lint
        # a positive at another level than splinter's is a documented difference (advisor.LINTS gives the reason)
        assert note or all(c.severity == LEVELS[level] for c in CASES if c.lint == lint and c.kind == "positive"), lint
