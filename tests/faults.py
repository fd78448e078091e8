"""Real faults on a real server, made through real connections: blocking trees, idle transactions, advisory waits,
long statements, deadlocks, connection floods, temp-file spills, slow statements, inactive slots, burnt XIDs.

Every fault opens its sessions through a `Faults` object, which ends them all (terminate, then close) on close():

    with Faults(db.conninfo) as f:
        chain = blocking_chain(f)          # {"root": pid, "b": pid, ...}
        ...                                 # run checks / the runbook
"""
from __future__ import annotations

import threading
import time
import uuid

import psycopg

WAIT_TIMEOUT_S = 15


class Faults:
    """The sessions and threads a test opened to make faults; close() ends every one of them."""

    def __init__(self, conninfo: str):
        self.conninfo = conninfo
        self.conns: list[psycopg.Connection] = []
        self.threads: list[threading.Thread] = []
        self.errors: dict[int, BaseException] = {}  # pid -> error its blocked statement ended with
        self.slots: list[str] = []

    # ------------------------------------------------------------------ sessions
    def session(self, name: str, *, autocommit: bool = True, **settings: str) -> psycopg.Connection:
        """A new connection with application_name `fault-<name>` (so reports say which fault a pid is)."""
        conn = psycopg.connect(self.conninfo, autocommit=autocommit, application_name=f"fault-{name}")
        for k, v in settings.items():
            conn.execute("SELECT set_config(%s, %s, false)", (k, v))
        if not autocommit:
            conn.commit()  # the set_config above opened a transaction
        self.conns.append(conn)
        return conn

    def in_thread(self, conn: psycopg.Connection, sql: str, params=None) -> threading.Thread:
        """Run a statement that is expected to wait (or sleep) on `conn` in a thread."""
        pid = conn.info.backend_pid

        def work():
            try:
                conn.execute(sql, params)
            except psycopg.Error as e:  # cancelled, terminated or chosen as the deadlock victim
                self.errors[pid] = e

        t = threading.Thread(target=work, daemon=True, name=f"fault-{pid}")
        t.start()
        self.threads.append(t)
        return t

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.conninfo, autocommit=True, application_name="fault-admin")

    def wait_for(self, sql: str, params=None, timeout: float = WAIT_TIMEOUT_S) -> None:
        """Poll until `sql` returns true (e.g. a pid is waiting on a lock)."""
        deadline = time.monotonic() + timeout
        with self.admin() as c:
            while time.monotonic() < deadline:
                if c.execute(sql, params).fetchone()[0]:
                    return
                time.sleep(0.05)
        raise TimeoutError(f"fault did not come about within {timeout} s: {sql} {params}")

    def wait_lock(self, *pids: int) -> None:
        """Until every pid waits on a lock."""
        self.wait_for("SELECT count(*) = %s FROM pg_stat_activity WHERE pid = ANY(%s) AND wait_event_type = 'Lock'",
                      (len(pids), list(pids)))

    # ------------------------------------------------------------------ cleanup
    def close(self) -> None:
        pids = [c.info.backend_pid for c in self.conns if not c.closed]
        try:
            with self.admin() as c:
                if pids:
                    c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
                for slot in self.slots:
                    c.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                              "WHERE slot_name = %s", (slot,))
        finally:
            for t in self.threads:
                t.join(timeout=5)
            for conn in self.conns:
                conn.close()

    def __enter__(self) -> "Faults":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def pid(conn: psycopg.Connection) -> int:
    return conn.info.backend_pid


def alive(conninfo: str, pids) -> set[int]:
    """The pids among `pids` that still have a backend."""
    with psycopg.connect(conninfo, autocommit=True) as c:
        return {r[0] for r in c.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),))}


def make_tables(conninfo: str, *names: str, rows: int = 3) -> None:
    """Small tables (id int primary key, v int) with rows 1..rows, for lock faults."""
    with psycopg.connect(conninfo, autocommit=True) as c:
        for n in names:
            c.execute(f"CREATE TABLE IF NOT EXISTS {n} (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)")
            c.execute(f"INSERT INTO {n} (id) SELECT g FROM generate_series(1, %s) g ON CONFLICT DO NOTHING", (rows,))


# ---------------------------------------------------------------------------------------------- lock faults
def blocking_chain(f: Faults, prefix: str = "chain") -> dict[str, int]:
    """A blocking tree three levels deep under a root that is idle in transaction, with every waiter kind but
    advisory:

        root  idle in transaction, updated {prefix}_a row 1
        ├─ b       waits transactionid (root's)   holds {prefix}_b row 1
        │  └─ c    waits transactionid (b's)      holds {prefix}_c row 1, and the tuple lock on {prefix}_b row 1
        │     ├─ d waits transactionid (c's)
        │     └─ e waits tuple ({prefix}_b row 1)
        └─ f       waits relation {prefix}_a (ACCESS EXCLUSIVE; blocked by root and b)
    """
    a, b, c = f"{prefix}_a", f"{prefix}_b", f"{prefix}_c"
    make_tables(f.conninfo, a, b, c)
    root = f.session("root", autocommit=False)
    root.execute(f"UPDATE {a} SET v = v + 1 WHERE id = 1")
    sb = f.session("b", autocommit=False)
    sb.execute(f"UPDATE {b} SET v = v + 1 WHERE id = 1")
    f.in_thread(sb, f"UPDATE {a} SET v = v + 1 WHERE id = 1")
    f.wait_lock(pid(sb))
    sc = f.session("c", autocommit=False)
    sc.execute(f"UPDATE {c} SET v = v + 1 WHERE id = 1")
    f.in_thread(sc, f"UPDATE {b} SET v = v + 1 WHERE id = 1")
    f.wait_lock(pid(sc))
    sd = f.session("d")
    f.in_thread(sd, f"UPDATE {c} SET v = v + 1 WHERE id = 1")
    se = f.session("e")
    f.in_thread(se, f"UPDATE {b} SET v = v + 1 WHERE id = 1")
    sf = f.session("f", autocommit=False)
    f.in_thread(sf, f"LOCK TABLE {a} IN ACCESS EXCLUSIVE MODE")
    f.wait_lock(pid(sd), pid(se), pid(sf))
    return {"root": pid(root), "b": pid(sb), "c": pid(sc), "d": pid(sd), "e": pid(se), "f": pid(sf)}


def advisory_wait(f: Faults, key: int = 4711) -> dict[str, int]:
    """An idle session holding a session-level advisory lock, and one waiting for the same key."""
    holder = f.session("advisory-holder")
    holder.execute("SELECT pg_advisory_lock(%s)", (key,))
    waiter = f.session("advisory-waiter")
    f.in_thread(waiter, "SELECT pg_advisory_lock(%s)", (key,))
    f.wait_lock(pid(waiter))
    return {"holder": pid(holder), "waiter": pid(waiter)}


def idle_in_transaction(f: Faults) -> int:
    """A session idle in a transaction that holds an XID (and so the xmin horizon) but blocks nobody."""
    s = f.session("idle-in-tx", autocommit=False)
    s.execute("SELECT pg_current_xact_id()")
    return pid(s)


def long_running(f: Faults, seconds: float = 120) -> int:
    """An active statement (pg_sleep) that runs for `seconds` unless ended."""
    s = f.session("sleeper")
    f.in_thread(s, "SELECT pg_sleep(%s)", (seconds,))
    f.wait_for("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active')", (pid(s),))
    return pid(s)


def idle_sessions(f: Faults, n: int) -> list[int]:
    """n idle connections (a connection flood when n is large)."""
    return [pid(f.session(f"idle-{i}")) for i in range(n)]


def deadlock(f: Faults, table: str = "deadlock_t") -> BaseException:
    """Two transactions that lock two rows in opposite order; returns the error the victim got.

    deadlock_timeout is lowered on both sessions (superuser) so the server detects it in 50 ms. Both sessions are
    closed afterwards so their statistics (pg_stat_database.deadlocks) are flushed.
    """
    make_tables(f.conninfo, table, rows=2)
    counted = _db_counter(f.conninfo, "deadlocks")
    s1 = f.session("deadlock-1", autocommit=False, deadlock_timeout="50ms")
    s2 = f.session("deadlock-2", autocommit=False, deadlock_timeout="50ms")
    s1.execute(f"UPDATE {table} SET v = v + 1 WHERE id = 1")
    s2.execute(f"UPDATE {table} SET v = v + 1 WHERE id = 2")
    t = f.in_thread(s1, f"UPDATE {table} SET v = v + 1 WHERE id = 2")
    f.wait_lock(pid(s1))
    victim = None
    try:
        s2.execute(f"UPDATE {table} SET v = v + 1 WHERE id = 1")
    except psycopg.errors.DeadlockDetected as e:
        victim = e
    t.join(timeout=10)
    victim = victim or f.errors.get(pid(s1))
    for s in (s1, s2):
        s.rollback()
        s.close()
    if not isinstance(victim, psycopg.errors.DeadlockDetected):
        raise AssertionError(f"no deadlock came about: {victim!r}")
    _wait_counter(f.conninfo, "deadlocks", counted)  # flushed by the exiting backends, after close() returns
    return victim


def _db_counter(conninfo: str, column: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as c:
        return c.execute(f"SELECT {column} FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


def _wait_counter(conninfo: str, column: str, before: int, timeout: float = 15.0) -> None:
    """Until pg_stat_database.<column> moves past `before`: backends flush their statistics as they exit."""
    deadline = time.monotonic() + timeout
    while _db_counter(conninfo, column) <= before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"pg_stat_database.{column} did not move past {before} within {timeout} s")
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------- load faults
def temp_file_sort(conninfo: str, rows: int = 200_000) -> None:
    """One sort far larger than a 64 kB work_mem: it spills to a temporary file (counted when the session ends)."""
    counted = _db_counter(conninfo, "temp_files")
    with psycopg.connect(conninfo, autocommit=True, application_name="fault-temp-sort") as c:
        c.execute("SET work_mem = '64kB'")
        c.execute(f"SELECT sum(x) FROM (SELECT g AS x FROM generate_series(1, {int(rows)}) g "
                  "ORDER BY md5(g::text) OFFSET 0) s")
    _wait_counter(conninfo, "temp_files", counted)


def slow_statements(conninfo: str, calls: int = 30, rows: int = 100_000, table: str = "slow_t") -> str:
    """`calls` runs of a lookup with no index on a `rows`-row table: a seq scan each time. Returns its text."""
    with psycopg.connect(conninfo, autocommit=True, application_name="fault-slow") as c:
        c.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT g AS id, md5(g::text) AS payload "
                  f"FROM generate_series(1, {int(rows)}) g")
        sql = f"SELECT count(*) FROM {table} WHERE payload LIKE %s"
        for i in range(calls):
            c.execute(sql, (f"%{i:02x}ff%",))
    return sql


def inactive_slot(f: Faults, wal_rows: int = 20_000) -> str:
    """A physical replication slot that nothing consumes, reserving WAL from now on, then some WAL written."""
    name = f"fault_slot_{uuid.uuid4().hex[:8]}"
    with f.admin() as c:
        c.execute("SELECT pg_create_physical_replication_slot(%s, true)", (name,))
        f.slots.append(name)
        c.execute(f"CREATE TABLE IF NOT EXISTS slot_wal_t AS SELECT g, md5(g::text) "
                  f"FROM generate_series(1, {int(wal_rows)}) g")
    return name


def burn_xids(conninfo: str, n: int) -> None:
    """Consume n transaction IDs (n committed transactions), as a busy write load would."""
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute("CREATE OR REPLACE PROCEDURE fault_burn_xids(n int) LANGUAGE plpgsql AS $$ BEGIN "
                  "FOR i IN 1..n LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$")
        c.execute("CALL fault_burn_xids(%s)", (n,))


# ---------------------------------------------------------------------------------------------- privilege faults
def monitoring_role(conninfo: str, name: str, *grants: str) -> str:
    """A login role that may only CONNECT to the database behind `conninfo` (no grant on any schema object), plus
    the predefined roles in `grants` (pg_monitor, pg_read_all_data, ...). Returns its conninfo; drop_role() ends it."""
    with psycopg.connect(conninfo, autocommit=True) as c:
        db = c.info.dbname
        c.execute(f'DROP ROLE IF EXISTS "{name}"')
        c.execute(f'CREATE ROLE "{name}" LOGIN' + (f" IN ROLE {', '.join(grants)}" if grants else ""))
        c.execute(f'REVOKE ALL ON DATABASE "{db}" FROM PUBLIC')
        c.execute(f'GRANT CONNECT ON DATABASE "{db}" TO "{name}"')
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    return psycopg.conninfo.make_conninfo(**{**params, "user": name})


def drop_role(conninfo: str, name: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
        c.execute(f'DROP OWNED BY "{name}"')
        c.execute(f'DROP ROLE "{name}"')


def sequence_at(conninfo: str, table: str, pct: float, column_type: str = "int4") -> str:
    """A table whose serial key's sequence stands at `pct`% of the key column's type limit; returns the sequence."""
    limit = {"int2": 32767, "int4": 2147483647, "int8": 9223372036854775807}[column_type]
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute(f"CREATE TABLE {table} (id {column_type} GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)")
        seq = c.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
        c.execute("SELECT setval(%s, %s)", (seq, int(limit * pct / 100)))
    return seq


# ---------------------------------------------------------------------------------------------- many waiters
def _send(conn: psycopg.Connection, sql: str) -> None:
    """Send a statement that will wait on a lock and return at once (no thread per waiter: a pile of 1,000 is
    1,000 connections, not 1,000 threads); Faults.close() terminates the backend."""
    conn.pgconn.send_query(sql.encode())


def _until_waiting(admin: psycopg.Connection, pid_: int, timeout: float = WAIT_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not admin.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted)",
                            (pid_,)).fetchone()[0]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"pid {pid_} did not start waiting within {timeout} s")
        time.sleep(0.002)


def waiter_queue(f: Faults, n: int, table: str = "queue_t") -> dict[str, object]:
    """n sessions queued, one after the other, to update the row a root idle in transaction holds:

        root (idle in transaction, updated row 1)
        └─ w1      waits transactionid (root's), holds the tuple lock
           ├─ w2   waits tuple (row 1): blocked by w1
           ├─ w3   waits tuple: blocked by w1 and (queued ahead of it) w2
           └─ ...  wk is blocked by w1..w(k-1): a queue of n has ~n²/2 edges
    """
    make_tables(f.conninfo, table, rows=1)
    root = f.session("queue-root", autocommit=False)
    root.execute(f"UPDATE {table} SET v = v + 1 WHERE id = 1")
    waiters = []
    with f.admin() as admin:
        for i in range(n):
            s = f.session(f"queue-{i + 1}")
            _send(s, f"UPDATE {table} SET v = v + 1 WHERE id = 1")
            _until_waiting(admin, pid(s))  # in queue order
            waiters.append(pid(s))
    return {"root": pid(root), "waiters": waiters}


def waiter_chain(f: Faults, n: int, table: str = "chain_t") -> dict[str, object]:
    """A chain n deep: session i holds row i and waits for row i-1, held by session i-1; session 0 is idle in
    transaction. Returns {"root": pid, "waiters": [pid of session 1, ..., n]}."""
    make_tables(f.conninfo, table, rows=n + 1)
    root = f.session("chain-0", autocommit=False)
    root.execute(f"UPDATE {table} SET v = v + 1 WHERE id = 1")
    waiters = []
    with f.admin() as admin:
        for i in range(1, n + 1):
            s = f.session(f"chain-{i}", autocommit=False)
            s.execute(f"UPDATE {table} SET v = v + 1 WHERE id = {i + 1}")
            _send(s, f"UPDATE {table} SET v = v + 1 WHERE id = {i}")
            _until_waiting(admin, pid(s))
            waiters.append(pid(s))
    return {"root": pid(root), "waiters": waiters}
