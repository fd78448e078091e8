"""Quiet on the server, and Supabase recognised by what the catalogue shows (issue 21, defects 1 and 5).

A server of this module's own: a plain database, and a Supabase-shaped one whose `auth` and `storage` schemas
belong to their own NOLOGIN admin roles with USAGE only for anon/authenticated/service_role, as Supabase sets them
up. One pass of five runbooks through the runner, as a superuser and as a pg_monitor-only role, must write no ERROR
line into the server's log; the pg_monitor-only role's security audit must recognise Supabase and say what it could
not see, never give an all-clear; `opsbook snapshot` must not fail there."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from conftest import _server, drop_database, make_database
from faults import drop_role, monitoring_role
from opsbook.checks.security import audit
from opsbook.config.file import from_dict
from opsbook.run.context import Runbook
from opsbook.core.findings import PARTIAL, gaps

pytestmark = pytest.mark.slow

RUNBOOKS = ("capacity-planning", "security-audit", "cost-analysis", "incident-triage", "monthly-health")
ERROR_LINE = re.compile(r"\b(ERROR|FATAL|PANIC):  ")
PLATFORM_SQL = Path(__file__).resolve().parents[1] / "lib" / "opsbook" / "database" / "demo" / "00_platform.sql"

# Supabase's platform layer (the demo's own roles, schemas and tables), then what Supabase does that the demo does
# not: auth and storage belong to their admin roles, which nobody else is. Then one hole of each kind.
SUPABASE = """
CREATE ROLE supabase_auth_admin NOLOGIN NOINHERIT;
CREATE ROLE supabase_storage_admin NOLOGIN NOINHERIT;
ALTER SCHEMA auth OWNER TO supabase_auth_admin;
ALTER SCHEMA storage OWNER TO supabase_storage_admin;
ALTER TABLE auth.users OWNER TO supabase_auth_admin;
ALTER TABLE auth.sessions OWNER TO supabase_auth_admin;
ALTER TABLE auth.audit_log_entries OWNER TO supabase_auth_admin;
ALTER TABLE storage.buckets OWNER TO supabase_storage_admin;
ALTER TABLE storage.objects OWNER TO supabase_storage_admin;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
-- a table without row-level security that anon reads and writes
CREATE TABLE public.leads (id int PRIMARY KEY, email text, api_key text);
GRANT SELECT, INSERT ON public.leads TO anon, authenticated;
INSERT INTO public.leads SELECT g, 'u' || g || '@example.com', md5(g::text) FROM generate_series(1, 25) g;
-- a public bucket whose objects anyone can list (the platform's "Public buckets are readable" policy)
INSERT INTO storage.buckets (id, name, public) VALUES ('avatars', 'avatars', true), ('invoices', 'invoices', false);
INSERT INTO storage.objects (id, bucket_id, name, metadata)
SELECT gen_random_uuid(), 'avatars', 'a/' || g || '.png', jsonb_build_object('size', 1000 * g)
FROM generate_series(1, 5) g;
INSERT INTO auth.users (id, email, last_sign_in_at, created_at)
SELECT gen_random_uuid(), 'u' || g || '@example.com', now() - g * interval '1 day', now() - interval '60 days'
FROM generate_series(1, 12) g;
"""


def supabase_shaped(server) -> object:
    """A database built as Supabase builds one (see SUPABASE above)."""
    d = make_database(server)
    with psycopg.connect(d.conninfo, autocommit=True) as c:
        c.execute(PLATFORM_SQL.read_text())
        c.execute(SUPABASE)
        owners = dict(c.execute("SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace "
                                "WHERE nspname IN ('auth', 'storage')").fetchall())
    assert owners == {"auth": "supabase_auth_admin", "storage": "supabase_storage_admin"}
    return d


class Log:
    """The server's log from an offset on: the ERROR lines written since `mark()`, each with its STATEMENT."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def errors(self) -> list[str]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            lines = f.read().decode(errors="replace").splitlines()
        out = []
        for i, line in enumerate(lines):
            if ERROR_LINE.search(line):
                statement = lines[i + 1] if i + 1 < len(lines) and "STATEMENT:" in lines[i + 1] else ""
                out.append(f"{line.strip()} {' '.join(statement.split())[:160]}".strip())
        return out


@pytest.fixture(scope="module")
def quiet(tmp_path_factory):
    """The module's server, a plain database and a Supabase-shaped one, each with a pg_monitor-only role.

    The Supabase roles are cluster-wide; the plain database does not look at them (it is the database, not the
    cluster, that is Supabase-shaped), but the plain runs come first all the same (see `passes`)."""
    server = _server(tmp_path_factory, "quiet", log_line_prefix="%m [%p] app=%a db=%d user=%u ")
    plain = make_database(server)
    plain.execute("CREATE TABLE public.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, total numeric); "
                  "INSERT INTO public.orders (total) SELECT g FROM generate_series(1, 500) g; ANALYZE public.orders")
    made = {"plain": plain}
    try:
        yield {"server": server, "made": made, "log": Log(server.log_file),
               "dsn": {"plain-superuser": plain.conninfo,
                       "plain-monitor": monitoring_role(plain.conninfo, "quiet_monitor_plain", "pg_monitor")}}
    finally:
        for name, d in made.items():
            for role in ("quiet_monitor_plain", "quiet_monitor_supabase"):
                try:
                    drop_role(d.conninfo, role)
                except psycopg.Error:
                    pass
            drop_database(d)
        server.stop()


def add_supabase(quiet) -> str:
    """The Supabase-shaped database (once) and the conninfo of its pg_monitor-only role."""
    if "supabase" not in quiet["made"]:
        d = quiet["made"]["supabase"] = supabase_shaped(quiet["server"])
        quiet["dsn"]["supabase-superuser"] = d.conninfo
        quiet["dsn"]["supabase-monitor"] = monitoring_role(d.conninfo, "quiet_monitor_supabase", "pg_monitor")
    return quiet["dsn"]["supabase-monitor"]


def config_for(dsn: str, tmp: Path):
    return from_dict({"targets": {"test": {"dsn": dsn}}, "history": {"url": f"sqlite:///{tmp / 'history.sqlite'}"},
                      "reports": {"dir": str(tmp / "reports")}})


@pytest.fixture(scope="module")
def passes(quiet, tmp_path_factory):
    """One pass of every runbook through the runner per case: {case: {runbook: (ERROR lines, sidecar)}}."""
    from opsbook.run.runner import run_runbook

    out: dict[str, dict[str, tuple[list[str], dict]]] = {}
    for case in ("plain-superuser", "plain-monitor", "supabase-monitor"):
        if case.startswith("supabase"):
            add_supabase(quiet)
        tmp = tmp_path_factory.mktemp(case)
        config = config_for(quiet["dsn"][case], tmp)
        out[case] = {}
        for name in RUNBOOKS:
            quiet["log"].mark()
            result = run_runbook(name, "test", {}, config=config, output_dir=tmp / "reports", refresh_index=False)
            ran = result.exit_code == 0 and result.sidecar["status"] == "ok"
            sidecar = {**result.sidecar, "html": result.html_path.read_text()} if ran else \
                {"error": result.sidecar["error"]}
            out[case][name] = (quiet["log"].errors(), sidecar)
    return out


@pytest.mark.parametrize("case", ["plain-superuser", "plain-monitor", "supabase-monitor"])
def test_one_pass_of_every_runbook_writes_no_error_into_the_server_log(passes, case):
    errors = {name: lines for name, (lines, _) in passes[case].items() if lines}
    counts = {name: len(lines) for name, lines in errors.items()}
    print(f"{case}: ERROR lines per runbook {counts}", *[f"  {line}" for ls in errors.values() for line in ls],
          sep="\n", file=sys.stderr)
    assert errors == {}, f"{case}: {sum(counts.values())} ERROR line(s): {errors}"


@pytest.mark.parametrize("case", ["plain-superuser", "plain-monitor", "supabase-monitor"])
def test_every_runbook_of_the_pass_completes(passes, case):
    failed = {name: sidecar["error"] for name, (_, sidecar) in passes[case].items() if "findings" not in sidecar}
    assert failed == {}, f"{case}: runbooks that did not complete: {failed}"


def test_security_audit_through_the_runner_on_supabase_as_pg_monitor_says_it_is_incomplete(passes):
    sidecar = passes["supabase-monitor"]["security-audit"][1]
    assert "findings" in sidecar, sidecar["error"]
    by = {}
    for f in sidecar["findings"]:
        by.setdefault(f["check"], []).append(f)
    assert set(audit.SUPABASE_CHECKS) <= set(by), set(audit.SUPABASE_CHECKS) - set(by)
    assert [f["severity"] for f in by["security.rls_disabled"]] == ["critical"]
    assert by["security.rls_disabled"][0]["objects"] == ["public.leads"]
    [listing] = by["security.bucket_listing"]
    assert listing["severity"] == "info" and listing["skipped"].startswith(PARTIAL)
    html = sidecar["html"]
    verdict = html[html.index("Verdict"):html.index("What the Data API serves")]
    assert "anon (anyone with the public API key) can reach at least 2 object(s)" in verdict  # leads, leads.api_key
    assert "Incomplete: 1 Supabase check(s) could not see everything (security.bucket_listing)" in verdict
    assert "This result is incomplete" in verdict and "nothing it should not" not in verdict


def audit_as(dsn: str):
    rb = Runbook("security-audit", "test", config=from_dict({"targets": {"test": {"dsn": dsn}}}))
    rb.connect()
    audit.run(rb)
    return rb


def test_pg_monitor_on_supabase_is_told_what_it_could_not_see_never_all_clear(quiet):
    """Defect 1: the scope query named auth.users, which a role without USAGE on auth may not even look up; the
    audit then took the database for plain PostgreSQL and ran none of the Supabase checks."""
    add_supabase(quiet)
    superuser = audit_as(quiet["dsn"]["supabase-superuser"])
    monitor = audit_as(quiet["dsn"]["supabase-monitor"])
    try:
        scope = [f for f in monitor.findings if f.check == "security.scope"]
        assert len(scope) == 1 and not scope[0].skipped and "not a Supabase" not in scope[0].title, scope
        assert monitor.data("security.scope").attrs["scope"].supabase
        for check in audit.SUPABASE_CHECKS:
            found = [f for f in monitor.findings if f.check == check]
            assert found, f"{check}: neither ran nor said why"
            for f in found:
                assert not f.skipped or f.severity.value == "info", f
        exposed_super = audit.anon_exposure(superuser)
        exposed_monitor = audit.anon_exposure(monitor)
        assert {"public.leads", "storage bucket avatars"} <= set(exposed_super["object"])
        assert "public.leads" in set(exposed_monitor["object"])  # from the catalogue: no USAGE needed
        # what it could not read is said, with the grant, and makes the result incomplete
        [listing] = [f for f in monitor.findings if f.check == "security.bucket_listing"]
        assert listing.skipped.startswith(PARTIAL) and "storage" in listing.skipped
        assert "USAGE ON SCHEMA storage" in listing.remediation
        assert any("security.bucket_listing" in g for g in gaps(monitor.findings))
        # the superuser saw it all: nothing about the Supabase checks is partial there
        assert not [f for f in superuser.findings if f.check in audit.SUPABASE_CHECKS and f.skipped]
    finally:
        superuser.close()
        monitor.close()


def test_snapshot_as_pg_monitor_on_supabase_succeeds(quiet, tmp_path):
    """Defect 1: `opsbook snapshot` exited 1 with a traceback (to_regclass('storage.objects') in history/database)."""
    dsn = add_supabase(quiet)
    (tmp_path / "opsbook.toml").write_text(f'[targets.test]\ndsn = "{dsn}"\n'
                                          f'[history]\nurl = "sqlite:///{tmp_path / "h.sqlite"}"\n')
    quiet["log"].mark()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    out = subprocess.run([str(Path(sys.executable).with_name("opsbook")), "--config", str(tmp_path / "opsbook.toml"),
                          "snapshot", "--target", "test"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert "test: snapshot 1" in out.stdout
    assert quiet["log"].errors() == []
