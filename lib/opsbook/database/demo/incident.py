"""A real, recorded incident: a report job idle in transaction on a hot row, checkout sessions piling up behind it
and cancelled by their statement_timeout, a deadlock, a connection storm past max_connections, a spilling sort."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psycopg

# what the server must log for the incident to be readable afterwards (EmbeddedServer(settings=...))
LOG_SETTINGS = {
    "logging_collector": "on", "log_destination": "'stderr,csvlog,jsonlog'", "log_directory": "'log'",
    "log_filename": "'postgresql.log'", "log_rotation_age": "0", "log_rotation_size": "0",
    "log_line_prefix": "'%m [%p] %q%u@%d app=%a '", "log_lock_waits": "on", "deadlock_timeout": "200ms",
    "log_connections": "on", "log_disconnections": "on", "log_temp_files": "0", "log_checkpoints": "on",
    "log_min_duration_statement": "-1", "log_autovacuum_min_duration": "0", "max_connections": "20",
}
HOLDER_APP, WORKER_APP, STORM_APP = "report_job", "checkout_api", "burst_worker"
HOT_TABLE = "public.pm_branches"
HOLDER_SQL = "UPDATE pm_branches SET balance = balance + 1 WHERE id = 1"
WORKER_SQL = "UPDATE pm_branches SET balance = balance - 1 WHERE id = 1"


@dataclass
class Incident:
    """What was done, for the tests to compare with what the post-mortem finds."""

    start: float = 0.0
    end: float = 0.0
    holder_pid: int = 0
    holder_held_s: float = 0.0
    waiters: int = 0
    timeouts: int = 0
    deadlocks: int = 0
    refused: int = 0
    temp_sorts: int = 0
    errors: list[str] = field(default_factory=list)


def prepare(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS pm_branches (id int PRIMARY KEY, balance bigint NOT NULL)")
        c.execute("INSERT INTO pm_branches SELECT g, 0 FROM generate_series(1, 10) g ON CONFLICT DO NOTHING")


def _connect(conninfo: str, app: str, **kw) -> psycopg.Connection:
    conn = psycopg.connect(conninfo, autocommit=True, application_name=app, **kw)
    if kw.get("user") is None:  # superuser-only settings, for this session: its waits are logged
        conn.execute("SET log_lock_waits = on")
        conn.execute("SET deadlock_timeout = '200ms'")
    return conn


def run_incident(conninfo: str, *, waiters: int = 4, rounds: int = 2, statement_timeout_ms: int = 700,
                 storm: int = 24, storm_role: str | None = None, on_tick=None) -> Incident:
    """Play the incident on the database `conninfo` names (the server should log per LOG_SETTINGS; the sessions
    also turn log_lock_waits on for themselves, so a superuser's incident is logged on any server).

    `storm_role`: open the storm as this role with a CONNECTION LIMIT of 3 instead of exhausting max_connections
    (a shared server). `on_tick()` is called between phases (a sampler takes a sample there)."""
    tick = on_tick or (lambda: None)
    prepare(conninfo)
    inc = Incident(start=time.time())
    holder = _connect(conninfo, HOLDER_APP)
    holder.autocommit = False
    inc.holder_pid = holder.info.backend_pid
    holder.execute(HOLDER_SQL)  # leaves the transaction open: idle in transaction, holding the row
    held_from = time.time()
    lock = threading.Lock()

    def worker(i: int) -> None:
        with _connect(conninfo, WORKER_APP) as c:
            c.execute(f"SET statement_timeout = {int(statement_timeout_ms)}")
            for _ in range(rounds):
                try:
                    c.execute(WORKER_SQL)
                except psycopg.errors.QueryCanceled:
                    with lock:
                        inc.timeouts += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(waiters)]
    for t in threads:
        t.start()
    inc.waiters = waiters
    time.sleep(statement_timeout_ms / 2000)
    tick()
    for t in threads:
        t.join(30)
    tick()
    inc.deadlocks = _deadlock(conninfo)
    inc.temp_sorts = _spill(conninfo)
    inc.refused = _storm(conninfo, storm, tick, storm_role)
    holder.execute("SELECT 1")  # the job wakes up and runs its last statement before committing
    holder.execute(HOLDER_SQL)
    tick()
    holder.commit()
    inc.holder_held_s = time.time() - held_from
    holder.close()
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute("CHECKPOINT")
        # leave nothing behind: the samples and the log keep the incident; the demo database stays as built
        # (a public table without RLS or a login role would be findings of other runbooks)
        c.execute("DROP TABLE IF EXISTS pm_branches")
        if storm_role:
            c.execute(f'DROP ROLE IF EXISTS "{storm_role}"')
    inc.end = time.time()
    return inc


def _deadlock(conninfo: str) -> int:
    a, b = _connect(conninfo, "ledger_sync"), _connect(conninfo, "ledger_sync")
    a.autocommit = b.autocommit = False
    a.execute("UPDATE pm_branches SET balance = balance + 1 WHERE id = 2")
    b.execute("UPDATE pm_branches SET balance = balance + 1 WHERE id = 3")
    errors = []

    def cross(conn, row):
        try:
            conn.execute(f"UPDATE pm_branches SET balance = balance + 1 WHERE id = {row}")
        except psycopg.errors.DeadlockDetected:
            errors.append(row)
        finally:
            conn.rollback()

    t = threading.Thread(target=cross, args=(a, 3), daemon=True)
    t.start()
    time.sleep(0.05)
    cross(b, 2)
    t.join(10)
    a.close()
    b.close()
    return len(errors)


def _spill(conninfo: str) -> int:
    with _connect(conninfo, "nightly_export") as c:
        c.execute("SET work_mem = '64kB'")
        c.execute("SELECT g FROM generate_series(1, 60000) g ORDER BY md5(g::text)").fetchall()
    return 1


def _storm(conninfo: str, n: int, tick, role: str | None = None) -> int:
    conns, refused = [], 0
    kw: dict = {"connect_timeout": 5}
    if role:
        with psycopg.connect(conninfo, autocommit=True) as c:
            exists = c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                c.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 3')
        kw["user"] = role
        n = min(n, 6)
    for _ in range(n):
        try:
            conns.append(_connect(conninfo, STORM_APP, **kw))
        except psycopg.OperationalError as e:
            if "too many" in str(e) or "remaining connection slots" in str(e):
                refused += 1
            else:
                raise
    tick()
    for c in conns:
        c.close()
    return refused


# ---------------------------------------------------------------------------------------------- the demo's
DEMO_ROLE = "burst_worker"
DEMO_NOTE = "the demo's recorded incident"
