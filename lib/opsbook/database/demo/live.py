"""live_faults(): real sessions that make an incident while a triage runs: a lock holder, its waiters, a long query."""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import psycopg

LIFETIME_S = 120        # everything ends by itself after this, even if the caller never exits the block
READY_TIMEOUT_S = 15
HOLDER_APP = "demo-worker"   # application_name of the session idle in transaction holding the row lock
WAITER_APP = "demo-api"      # the two sessions queued behind it
SLEEPER_APP = "demo-report"  # the long-running statement


@dataclass
class LiveFaults:
    """The pids of the sessions live_faults() opened."""

    holder_pid: int
    waiter_pids: list[int] = field(default_factory=list)
    sleeper_pid: int | None = None
    lead_id: int | None = None

    @property
    def pids(self) -> list[int]:
        return [self.holder_pid, *self.waiter_pids, *([self.sleeper_pid] if self.sleeper_pid else [])]


@contextlib.contextmanager
def live_faults(conninfo: str, *, lifetime_s: int = LIFETIME_S, waiters: int = 2):
    """Open real connections to `conninfo` (the demo database) making a live incident, for the `with` block.

    A `demo-worker` session updates one lead and stays idle in transaction; `waiters` `demo-api` sessions try
    to update the same lead and wait behind it (a small blocking tree); a `demo-report` session runs pg_sleep.
    Yields LiveFaults once all of them are visible in pg_stat_activity. On exit, even on error, the waits and
    the sleep are cancelled and every connection closed; a watchdog thread does the same after `lifetime_s`,
    and the server ends them on its own then too (idle_in_transaction_session_timeout, lock_timeout,
    statement_timeout), should this process die.
    """
    sessions = _Sessions(conninfo)
    stop = threading.Event()
    limit = f"{lifetime_s}s"
    try:
        holder = sessions.connect(HOLDER_APP, idle_in_transaction_session_timeout=limit)
        holder.autocommit = False
        lead_id = holder.execute("UPDATE leads SET status = 'contacted', updated_at = now() "
                                 "WHERE id = (SELECT min(id) FROM leads) RETURNING id").fetchone()[0]
        faults = LiveFaults(holder_pid=holder.info.backend_pid, lead_id=lead_id)
        for _ in range(waiters):
            waiter = sessions.connect(WAITER_APP, lock_timeout=limit, statement_timeout=limit)
            faults.waiter_pids.append(waiter.info.backend_pid)
            sessions.in_thread(waiter, "UPDATE leads SET status = 'qualified', updated_at = now() WHERE id = %s",
                               (lead_id,))
        sleeper = sessions.connect(SLEEPER_APP, statement_timeout=limit)
        faults.sleeper_pid = sleeper.info.backend_pid
        sessions.in_thread(sleeper, "SELECT pg_sleep(%s) /* nightly export */", (max(1, lifetime_s - 5),))
        _wait_until_visible(conninfo, faults)
        threading.Thread(target=lambda: stop.wait(lifetime_s) or sessions.close(), daemon=True,
                         name="live-faults-watchdog").start()
        yield faults
    finally:
        stop.set()
        sessions.close()


class _Sessions:
    """The fault connections and the threads blocked on them."""

    def __init__(self, conninfo: str):
        self.conninfo = conninfo
        self.conns: list[psycopg.Connection] = []
        self.threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def connect(self, app: str, **settings: str) -> psycopg.Connection:
        conn = psycopg.connect(self.conninfo, autocommit=True, application_name=app, connect_timeout=10)
        self.conns.append(conn)
        for name, value in settings.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        return conn

    def in_thread(self, conn: psycopg.Connection, query: str, params: tuple) -> None:
        def work() -> None:
            with contextlib.suppress(psycopg.Error):  # cancelled, timed out or closed: all expected
                conn.execute(query, params)

        t = threading.Thread(target=work, daemon=True, name=f"live-fault-{conn.info.backend_pid}")
        t.start()
        self.threads.append(t)

    def close(self) -> None:
        """Cancel what runs, let the threads finish, close every connection (rolling back the holder)."""
        with self._lock:
            for conn in self.conns:
                if not conn.closed:
                    with contextlib.suppress(Exception):
                        conn.cancel_safe(timeout=2)
            for t in self.threads:
                t.join(timeout=5)
            for conn in self.conns:
                with contextlib.suppress(Exception):
                    conn.close()


def _wait_until_visible(conninfo: str, faults: LiveFaults) -> None:
    """Return when the holder is idle in transaction, every waiter waits on a lock and the sleeper runs."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    with psycopg.connect(conninfo, autocommit=True, application_name="demo-faults-probe") as probe:
        while True:
            rows = dict(probe.execute(
                "SELECT pid, CASE WHEN state = 'idle in transaction' THEN 'idle_tx' "
                "WHEN wait_event_type = 'Lock' THEN 'waiting' WHEN state = 'active' THEN 'active' ELSE state END "
                "FROM pg_stat_activity WHERE pid = ANY(%s)", (faults.pids,)).fetchall())
            if (rows.get(faults.holder_pid) == "idle_tx" and rows.get(faults.sleeper_pid) == "active"
                    and all(rows.get(p) == "waiting" for p in faults.waiter_pids)):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"live faults not all visible after {READY_TIMEOUT_S} s: {rows}")
            time.sleep(0.05)
