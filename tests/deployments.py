"""The deployments of the support matrix, each set up on a real server: a superuser, Supabase's non-superuser
`postgres`, a pg_monitor-only role, a hot standby and a SQL_ASCII database (issue 21).

Each set-up is a function of a server returning a `Deployment`: the conninfo opsbook connects with, the database and
role its server-log lines carry (log_line_prefix LOG_PREFIX), and the server whose log they go to."""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from conftest import TEST_SETTINGS, Database, free_port
from faults import monitoring_role
from opsbook.database.embedded import EmbeddedServer, chown_to_account, embedded_bindir, run_as_account
from test_quiet_server import supabase_shaped

LOG_PREFIX = "%m [%p] db=%d user=%u app=%a "  # every line names the database and role: ERROR lines are attributed
SETUPS = ("superuser", "supabase", "monitor", "standby", "sql_ascii")
SUPABASE_ADMIN = "supabase_admin"  # the bootstrap superuser of a Supabase cluster; `postgres` is not a superuser

# What Supabase adds to the platform layer of tests/test_quiet_server.py (auth and storage owned by their admin
# roles): the `postgres` role as Supabase creates it, realtime, vault and graphql with their owners, the Data API's
# settings on its roles. Run as supabase_admin.
SUPABASE_POSTGRES = """
CREATE ROLE postgres LOGIN NOSUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS;
GRANT pg_monitor, pg_signal_backend TO postgres;
GRANT anon, authenticated, service_role TO postgres WITH ADMIN OPTION;
CREATE ROLE supabase_realtime_admin NOLOGIN NOINHERIT;
CREATE SCHEMA realtime AUTHORIZATION supabase_realtime_admin;
CREATE TABLE realtime.messages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, topic text NOT NULL,
    extension text NOT NULL, payload jsonb, inserted_at timestamp NOT NULL DEFAULT now());
ALTER TABLE realtime.messages OWNER TO supabase_realtime_admin;
ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;
GRANT USAGE ON SCHEMA realtime TO postgres, anon, authenticated, service_role;
GRANT SELECT, INSERT ON realtime.messages TO authenticated;
-- written by users: who may read a channel's messages
CREATE POLICY "authenticated read" ON realtime.messages FOR SELECT TO authenticated USING (true);
CREATE SCHEMA vault AUTHORIZATION supabase_admin;
CREATE TABLE vault.secrets (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text, secret text NOT NULL);
CREATE SCHEMA graphql AUTHORIZATION supabase_admin;
CREATE SCHEMA graphql_public AUTHORIZATION supabase_admin;
GRANT USAGE ON SCHEMA extensions, graphql, graphql_public TO postgres, anon, authenticated, service_role;
ALTER ROLE authenticator SET pgrst.db_schemas = 'public, graphql_public';
ALTER ROLE anon SET statement_timeout = '3s';
ALTER ROLE authenticated SET statement_timeout = '8s';
ALTER TABLE public.leads OWNER TO postgres;
"""
# PostgreSQL 14 brought pg_read_all_data; on 13 a Supabase-like `postgres` reads through grants on each schema
READ_ALL_DATA = "GRANT pg_read_all_data TO postgres"
READ_ALL_DATA_13 = """
GRANT USAGE ON SCHEMA auth, storage, realtime, vault, extensions, public TO postgres;
GRANT SELECT ON ALL TABLES IN SCHEMA auth, storage, realtime, vault, extensions, public TO postgres;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA auth, storage, realtime, vault, extensions, public TO postgres;
"""
ASCII_TABLE = (b'CREATE TABLE public.leads (id int PRIMARY KEY, name text); '
               b"INSERT INTO public.leads SELECT g, 'caf\xe9 <b>' || g FROM generate_series(1, 200) g; "
               b'CREATE TABLE public."caf\xe9" (id int); ANALYZE')


@dataclass
class Deployment:
    """One set-up: how opsbook connects, the server whose log it writes to, and the (db, user) its lines carry."""

    setup: str
    conninfo: str
    server: EmbeddedServer
    dbname: str
    user: str
    database: Database  # the database as its superuser sees it (on a standby: the primary's)


def cluster(bindir: Path | None, name: str, *, superuser: str = "postgres", **settings) -> EmbeddedServer:
    """A started server of these binaries under the suite's OPSBOOK_HOME (as conftest._server), its log prefix
    LOG_PREFIX, with a bootstrap superuser of the given name."""
    home = Path(os.environ["OPSBOOK_HOME"])
    server = EmbeddedServer(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=home)) / "data", bindir=bindir,
                            port=free_port(), superuser=superuser,
                            settings={**TEST_SETTINGS, "log_line_prefix": LOG_PREFIX, **settings})
    server.start()
    return server


def major(server: EmbeddedServer) -> int:
    return int(server.version().split(".")[0])


# ------------------------------------------------------------------------------------------------ the set-ups
def superuser(server: EmbeddedServer, database: Database | None = None) -> Deployment:
    """The bootstrap superuser on a Supabase-shaped database (the platform layer of tests/test_quiet_server.py)."""
    d = database or supabase_shaped(server)
    return Deployment("superuser", d.conninfo, server, d.name, server.superuser, d)


def pg_monitor_only(server: EmbeddedServer, database: Database) -> Deployment:
    """A login role with CONNECT and pg_monitor, nothing else (tests/faults.py monitoring_role)."""
    dsn = monitoring_role(database.conninfo, "matrix_monitor", "pg_monitor")
    return Deployment("monitor", dsn, server, database.name, "matrix_monitor", database)


def supabase_postgres(server: EmbeddedServer) -> Deployment:
    """Supabase's `postgres` on a cluster whose bootstrap superuser is supabase_admin (see SUPABASE_POSTGRES)."""
    assert server.superuser == SUPABASE_ADMIN, "initdb -U supabase_admin: cluster(..., superuser=SUPABASE_ADMIN)"
    d = supabase_shaped(server)
    with psycopg.connect(d.conninfo, autocommit=True) as c:
        c.execute(SUPABASE_POSTGRES)
        c.execute(READ_ALL_DATA if major(server) >= 14 else READ_ALL_DATA_13)
        c.execute(f'GRANT CONNECT ON DATABASE "{d.name}" TO postgres')
        role = c.execute("SELECT rolsuper, rolbypassrls, rolreplication, rolcreatedb, rolcreaterole "
                         "FROM pg_roles WHERE rolname = 'postgres'").fetchone()
        assert role == (False, True, True, True, True), role
        where = c.execute("SELECT extnamespace::regnamespace::text FROM pg_extension "
                          "WHERE extname = 'pg_stat_statements'").fetchone()
        assert where == ("extensions",), where
    return Deployment("supabase", server.conninfo(dbname=d.name, user="postgres"), server, d.name, "postgres", d)


def sql_ascii(server: EmbeddedServer) -> Deployment:
    """A SQL_ASCII database (initdb's choice where LANG is unset), a table name and rows carrying a latin-1 byte."""
    name = f"t_ascii_{os.urandom(4).hex()}"
    with psycopg.connect(server.conninfo(), autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    d = Database(server, name)
    with psycopg.connect(d.conninfo, autocommit=True) as c:
        c.execute(ASCII_TABLE)
    return Deployment("sql_ascii", d.conninfo, server, name, server.superuser, d)


def hot_standby(primary: EmbeddedServer, database: Database, client_bindir: Path | None = None) -> Deployment:
    """`database` on a streaming standby of `primary`, replayed up to now, as the superuser."""
    standby = make_standby(primary, client_bindir)
    lsn = _one(database.conninfo, "SELECT pg_current_wal_insert_lsn()::text")
    mirror = Database(standby, database.name)
    wait_for("the standby to replay the primary", lambda: _one(
        mirror.conninfo, f"SELECT pg_is_in_recovery() AND pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"))
    return Deployment("standby", mirror.conninfo, standby, database.name, standby.superuser, database)


def make_standby(primary: EmbeddedServer, client_bindir: Path | None = None) -> EmbeddedServer:
    """A streaming standby of `primary`: pg_basebackup -R run as the server account into a folder it owns, on a
    port of its own (the copy carries the primary's opsbook.conf, port line included). pg_basebackup is the
    primary's own, else `client_bindir`'s, else the embedded one (a newer client copies an older server)."""
    data = primary.data_dir.parent / "standby"
    data.mkdir(mode=0o700)
    chown_to_account(data)
    client = next(b for b in (primary.bindir, client_bindir, embedded_bindir())
                  if b is not None and (Path(b) / "pg_basebackup").exists())
    out = run_as_account([Path(client) / "pg_basebackup", "-D", data, "-R", "-X", "stream", "-c", "fast",
                          "-h", primary.data_dir, "-p", primary.configured_port(), "-U", primary.superuser])
    assert out.returncode == 0, out.stderr
    # a newer pg_basebackup writes libpq options an older walreceiver refuses (sslnegotiation, sslcertmode): the
    # standby gets a primary_conninfo of options every version knows
    auto = data / "postgresql.auto.conf"
    auto.write_text("".join(line for line in auto.read_text().splitlines(True)
                            if not line.startswith("primary_conninfo")) +
                    f"primary_conninfo = 'host={primary.data_dir} port={primary.configured_port()} "
                    f"user={primary.superuser} application_name=matrix_standby'\n")
    conf = data / "opsbook.conf"
    conf.write_text("".join(line for line in conf.read_text().splitlines(True) if not line.startswith("port ")))
    (data / "postmaster.pid").unlink(missing_ok=True)
    standby = EmbeddedServer(data, bindir=primary.bindir, port=free_port(), settings=dict(primary.settings),
                             superuser=primary.superuser)
    standby.start()
    return standby


def wait_for(what: str, probe, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.1)


def _one(conninfo: str, sql: str):
    with psycopg.connect(conninfo, autocommit=True) as c:
        return c.execute(sql).fetchone()[0]
