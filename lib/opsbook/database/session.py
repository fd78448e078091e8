"""connect(target) -> a safe, read-only Session; fetch(sql_name) -> DataFrame."""
from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import sql as sqlfiles
from ..config.file import Target
from ..core.errors import ConnectError
from ..core.redact import redact_frame, redact_sql

# Schemas managed by PostgreSQL or by Supabase itself: one list, bound as :excluded_schemas (STYLE 7).
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
PLATFORM_SCHEMAS = ("auth", "storage", "realtime", "supabase_functions", "supabase_migrations", "extensions",
                    "graphql", "graphql_public", "pgbouncer", "pgsodium", "pgsodium_masks", "vault", "net",
                    "cron", "_realtime", "_analytics", "pgtle", "_supavisor")
EXCLUDED_SCHEMAS = list(SYSTEM_SCHEMAS + PLATFORM_SCHEMAS)

DEFAULT_STATEMENT_TIMEOUT_MS = 30_000
DEFAULT_LOCK_TIMEOUT_MS = 1_000
DEFAULT_CONNECT_TIMEOUT_S = 5
APPLICATION_NAME = "opsbook"


@dataclass
class QueryTiming:
    name: str
    duration_ms: float
    rows: int


@dataclass
class Session:
    """A read-only, time-limited connection to one target. Every unit of work is its own `BEGIN READ ONLY`
    transaction with `SET LOCAL` settings (see `unit`), so nothing a statement does can make a later one writable
    and nothing opsbook sets outlives its transaction on a pooled server connection."""

    target: Target
    engine: Any
    conn: Any
    server_version_num: int
    server_version: str
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    timings: list[QueryTiming] = field(default_factory=list)

    @property
    def raw(self):
        """The psycopg connection underneath (for COPY, server-side cursors); use it inside `unit()`."""
        return self.conn.connection.driver_connection

    @property
    def proxied(self) -> bool:
        """True when a connection pooler or proxy stands between opsbook and the server."""
        return bool(getattr(self.raw, "opsbook_proxied", False))

    def unit(self, *, statement_timeout_ms: int | None = None):
        """One read-only transaction: `with session.unit(): ...` (nested calls join the outer one)."""
        return unit(self.raw, read_only=True,
                    statement_timeout_ms=self.statement_timeout_ms if statement_timeout_ms is None
                    else statement_timeout_ms, lock_timeout_ms=self.lock_timeout_ms)

    def fetch(self, sql_name: str, **params: Any):
        """Run the named query for this server's version and return a DataFrame."""
        return self.query(sqlfiles.load(sql_name, self.server_version_num), _name=sql_name, **params)

    def query(self, sql_text: str, _name: str = "adhoc", **params: Any):
        import pandas as pd  # noqa: PLC0415 - keep `import opsbook` light
        from sqlalchemy import text  # noqa: PLC0415

        if ":excluded_schemas" in sql_text:
            params.setdefault("excluded_schemas", EXCLUDED_SCHEMAS)
        t0 = time.perf_counter()
        with self.unit():
            result = self.conn.execute(text(sql_text), params)
            rows = result.fetchall() if result.returns_rows else None
        df = pd.DataFrame(rows, columns=list(result.keys())) if rows is not None else pd.DataFrame()
        redact_frame(df)  # query texts (pg_stat_activity, pg_stat_statements) lose their password literals here
        self.timings.append(QueryTiming(_name, (time.perf_counter() - t0) * 1000, len(df)))
        return df

    def scalar(self, sql_text: str, **params: Any) -> Any:
        df = self.query(sql_text, **params)
        return None if df.empty else df.iat[0, 0]

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self.engine.dispose()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# The text types psycopg loads with its TextLoader, plus the unknown oid (enums, regclass, any type without a
# loader of its own): in a SQL_ASCII database psycopg returns all of them as bytes, which it documents
# (https://www.psycopg.org/psycopg3/docs/basic/adapt.html#strings-adaptation).
TEXT_TYPES = (0, "bpchar", "name", "text", "varchar", '"char"')


def decode_sql_ascii(conn: Any) -> None:
    """Make `conn` return str for text when its client encoding is SQL_ASCII (a SQL_ASCII database, as initdb
    makes one where LANG is unset: bytes 128-255 uninterpreted). Client encoding UTF8 is no way out: the server
    then refuses to send a stored byte that is not UTF-8 ("invalid byte sequence"). Here such a byte becomes
    U+FFFD: a name or a query text stays data, shown and escaped like any other, and nothing downstream meets
    bytes. Query text stays ASCII-encoded (psycopg's choice for SQL_ASCII); values bound as parameters go as
    UTF-8."""
    if conn.info.encoding != "ascii":  # psycopg's name for SQL_ASCII
        return
    from psycopg.adapt import Loader  # noqa: PLC0415
    from psycopg.pq import Format  # noqa: PLC0415

    class SqlAsciiText(Loader):
        def load(self, data) -> str:
            return bytes(data).decode("utf-8", errors="replace")

    class SqlAsciiTextBinary(SqlAsciiText):
        format = Format.BINARY

    for oid in TEXT_TYPES:
        conn.adapters.register_loader(oid, SqlAsciiText)
        if oid:  # unknown types in binary stay bytes, as psycopg loads them everywhere
            conn.adapters.register_loader(oid, SqlAsciiTextBinary)


# Every session opsbook opens resolves names in pg_catalog only: a function or operator that a user of the audited
# database created in `public` or in a schema named like opsbook's role can never be chosen over the built-in one.
SEARCH_PATH = "pg_catalog, pg_temp"
IDLE_IN_TRANSACTION_MS = 60_000


def unit_sql(*, read_only: bool, statement_timeout_ms: int, lock_timeout_ms: int, isolation: str = "") -> str:
    """The statement that opens one unit of work: the transaction's mode and every setting opsbook needs, all
    LOCAL (gone at COMMIT), in one round trip; no function is called, so no user code can run before the path is
    pinned."""
    mode = ("ISOLATION LEVEL " + isolation + " " if isolation else "") + ("READ ONLY" if read_only else "READ WRITE")
    return (f"BEGIN {mode}; SET LOCAL search_path = {SEARCH_PATH}; "
            f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}; "
            f"SET LOCAL idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}; "
            f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")  # last: it times what follows


@contextmanager
def unit(conn, *, read_only: bool = True, statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
         lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS):
    """A transaction on the psycopg connection `conn` (in autocommit mode): committed when the block ends,
    rolled back when it raises. Inside an open transaction it adds nothing (the outer unit's settings hold)."""
    from psycopg import pq  # noqa: PLC0415

    if conn.info.transaction_status == pq.TransactionStatus.INERROR:
        _rollback_quietly(conn)  # what an earlier failure left: never carried into this unit
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        yield conn
        return
    try:
        conn.execute(unit_sql(read_only=read_only, statement_timeout_ms=statement_timeout_ms,
                              lock_timeout_ms=lock_timeout_ms))
    except BaseException:  # cancelled while opening (a tiny timeout, a signal): the transaction goes with it
        _rollback_quietly(conn)
        raise
    try:
        yield conn
    except BaseException:
        _rollback_quietly(conn)
        raise
    if conn.info.transaction_status == pq.TransactionStatus.INERROR:
        _rollback_quietly(conn)
    elif conn.info.transaction_status != pq.TransactionStatus.IDLE:
        conn.execute("COMMIT")


def _rollback_quietly(conn) -> None:
    try:
        if not conn.closed:
            conn.execute("ROLLBACK")
    except Exception:  # noqa: BLE001, S110 - a lost connection has nothing left to roll back
        pass


def startup_options(*, read_only: bool, statement_timeout_ms: int, lock_timeout_ms: int) -> str:
    """libpq `options`: the settings that hold from the session's start, before its first statement. A reader's
    timeouts are set per transaction (`unit`), where a tiny one cannot cancel the connection's set-up; a writer
    (never through a pooler) keeps them for the session."""
    opts: dict[str, Any] = {"search_path": SEARCH_PATH.replace(" ", ""),
                            "idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION_MS}
    if read_only:
        opts["default_transaction_read_only"] = "on"
    else:
        opts.update(statement_timeout=int(statement_timeout_ms), lock_timeout=int(lock_timeout_ms))
    return " ".join(f"-c {k}={v}" for k, v in opts.items())


POOLER_REFUSED = ("this connection goes through a connection pooler or proxy, and opsbook needs a session of its "
                  "own here (a scratch database, locks): give a direct connection string (on Supabase: the "
                  "database's direct host on port 5432, not the pooler)")
_UNSUPPORTED_OPTIONS = re.compile(r"unsupported startup parameter", re.I)


def raw_connect(conninfo: str, *, read_only: bool = True, statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
                lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS, connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S,
                autocommit: bool = True):
    """A psycopg connection with opsbook's settings in its startup options; errors are psycopg's own.

    Server-side prepared statements are off (a transaction pooler lends another server connection next time).
    A pooler that refuses startup options (PgBouncer) gets a connection without them: the per-transaction
    settings of `unit()` hold there all the same. `conn.opsbook_proxied` says whether a pooler or proxy stands
    between opsbook and the server (its backend key is not the server's backend pid). A writer (`read_only=False`)
    needs session state of its own (a scratch database, locks): through a pooler it is refused with ConnectError.
    """
    import psycopg  # noqa: PLC0415

    options = startup_options(read_only=read_only, statement_timeout_ms=statement_timeout_ms,
                              lock_timeout_ms=lock_timeout_ms)
    kw = {"connect_timeout": connect_timeout_s, "application_name": APPLICATION_NAME, "autocommit": True,
          "prepare_threshold": None}
    try:
        conn = psycopg.connect(conninfo, options=options, **kw)
        refused_options = False
    except psycopg.OperationalError as e:
        if not _UNSUPPORTED_OPTIONS.search(str(e)):
            raise
        conn = psycopg.connect(conninfo, **kw)
        refused_options = True
    decode_sql_ascii(conn)  # before the first query: SQLAlchemy's set-up reads version() as text
    try:
        with unit(conn, read_only=True, statement_timeout_ms=max(statement_timeout_ms, 5_000),
                  lock_timeout_ms=lock_timeout_ms):
            server_pid = conn.execute("SELECT pg_catalog.pg_backend_pid()").fetchone()[0]
        conn.opsbook_proxied = refused_options or server_pid != conn.info.backend_pid
        if conn.opsbook_proxied and not read_only:
            raise ConnectError(POOLER_REFUSED, "pooler", "")
    except BaseException:
        conn.close()
        raise
    conn.autocommit = autocommit
    return conn


def conninfo_of(target: Target) -> str:
    """The libpq connection string of any target: its own, or for the built-in demo the embedded server's socket."""
    if target.embedded:
        from ..config.file import DEMO_DATABASE  # noqa: PLC0415
        from .embedded import default_server  # noqa: PLC0415

        return default_server().conninfo(dbname=DEMO_DATABASE)
    return target.conninfo()


def connect(target: Target, *, read_only: bool = True, statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
            lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
            connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S, start_embedded: bool = True) -> Session:
    """Open a Session on `target`. The demo target starts the embedded server first (unless not
    `start_embedded`: a probe after a lost connection must see a stopped server as stopped).

    Raises ConnectError with `kind` in: dns, refused, timeout, hba, auth, no_database, no_password, ssl,
    own_timeout (a statement timeout cancelled the set-up: the server answered), other.
    The message never contains the password.
    """
    import psycopg  # noqa: PLC0415
    from sqlalchemy import create_engine  # noqa: PLC0415
    from sqlalchemy.pool import NullPool  # noqa: PLC0415

    if target.embedded and start_embedded:
        from .embedded import default_server  # noqa: PLC0415

        default_server().start()  # the demo database itself is built by opsbook.database.demo.build.ensure_demo_server
    conninfo = conninfo_of(target)

    def creator():
        return raw_connect(conninfo, read_only=read_only, statement_timeout_ms=statement_timeout_ms,
                           lock_timeout_ms=lock_timeout_ms, connect_timeout_s=connect_timeout_s)

    engine = create_engine("postgresql+psycopg://", creator=creator, poolclass=NullPool,
                           isolation_level="AUTOCOMMIT")
    try:
        conn = engine.connect()
    except Exception as e:  # sqlalchemy wraps psycopg's error; classify the original
        orig = getattr(e, "orig", e)
        if not isinstance(orig, psycopg.Error):
            raise
        kind, message = classify_connect_error(orig)
        engine.dispose()
        raise ConnectError(f"cannot connect to target {target.name!r} ({target.display()}): {message}",
                           kind, target.name) from None
    info = conn.connection.driver_connection.info  # reported by the server at start-up: no query needed
    num, ver = int(info.server_version), str(info.parameter_status("server_version") or info.server_version)
    return Session(target, engine, conn, num, ver, statement_timeout_ms=statement_timeout_ms,
                   lock_timeout_ms=lock_timeout_ms)


# What libpq says, and what kind of failure it is. Order matters: first match wins.
_CONNECT_ERRORS = [
    ("own_timeout", r"canceling statement due to statement timeout"),
    ("dns", r"could not translate host name|Name or service not known|nodename nor servname|Temporary failure in name"),
    ("refused", r"Connection refused|Is the server running|No such file or directory"),
    ("timeout", r"timeout expired|timed out|Connection timed out"),
    # pg_hba.conf turned the connection away before any password was asked: not a credentials problem
    ("hba", r"no pg_hba.conf entry|pg_hba.conf rejects connection"),
    ("auth", r"password authentication failed|authentication failed|role .* does not exist"),
    ("no_password", r"no password supplied|fe_sendauth"),
    ("no_database", r"database .* does not exist"),
    ("ssl", r"SSL|sslmode"),
]

NEXT_STEPS = {
    "dns": "the host name does not resolve: check the DSN's host, your DNS/VPN, and the project ref on the dashboard",
    "refused": "nothing is listening there: is the server up (status page, `pg_isready`), the port right, "
               "the project paused?",
    "timeout": "no answer in time: a firewall, network restrictions (Supabase IPv4/IPv6), or an overloaded server",
    "auth": "the server rejected the credentials: check the role and the password in ~/.pgpass, PGPASSWORD or "
            "the dsn_env variable; was the password rotated?",
    "hba": "the server's pg_hba.conf has no rule for this host/user/database/encryption: if the message says "
           "\"no encryption\", connect with SSL (sslmode=require in the DSN, a client built with SSL); otherwise ask "
           "the server's administrator for a pg_hba.conf line for this host, role and database (the password was "
           "never asked for)",
    "no_password": "the server wants a password and none was supplied: add it to ~/.pgpass or PGPASSWORD",
    "no_database": "the server is up but that database does not exist: check the DSN's database name",
    "ssl": "SSL negotiation failed: check sslmode, and use a client built with SSL (the embedded one is not)",
    "own_timeout": "the server answered, but a statement timeout cancelled opsbook's first query: raise "
                   "statement_timeout_ms for this run (default 30000), or the role's statement_timeout if one is set "
                   "(ALTER ROLE ... RESET statement_timeout, or options in the DSN)",
    "other": "see the message; try `psql` with the same connection settings",
}


def classify_connect_error(exc: Exception) -> tuple[str, str]:
    """(kind, one-line message) for a connection failure, with any password scrubbed."""
    text = " ".join(str(exc).split())
    text = redact_sql(re.sub(r"password=\S+", "password=***", text))
    for kind, pattern in _CONNECT_ERRORS:
        if re.search(pattern, text, re.I):
            return kind, text
    return "other", text
