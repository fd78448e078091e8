"""`opsbook watch`: sample targets every few seconds into the history store, through outages, until told to stop."""
from __future__ import annotations

import signal
import threading
import time
from typing import Callable

from .sample import take_sample
from .store import ensure_table, write_sample


class Watcher:
    """Samples `targets` every `every_s` seconds for `for_s` seconds (None: until stopped). A target that goes
    away gets one `unreachable` row (the gap starts there) and is retried at every tick; SIGTERM or SIGINT
    ends the loop after the sample in progress (each sample is committed as it is taken)."""

    def __init__(self, config, targets: list[str], *, store, every_s: float = 10, for_s: float | None = None,
                 echo: Callable[[str], None] = print):
        self.config, self.targets, self.store = config, targets, store
        self.every_s, self.for_s, self.echo = every_s, for_s, echo
        self.stop = threading.Event()
        self.sessions: dict[str, object] = {}
        self.down: dict[str, str] = {}  # target -> error, while unreachable
        self.counts = {"samples": 0, "gaps": 0}

    def install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())

    def run(self) -> dict:
        ensure_table(self.store.engine)
        deadline = None if self.for_s is None else time.monotonic() + self.for_s
        next_tick = time.monotonic()
        try:
            while not self.stop.is_set():
                for name in self.targets:
                    if self.stop.is_set():
                        break
                    self.tick(name)
                next_tick += self.every_s
                if deadline is not None and next_tick > deadline:
                    break
                self.stop.wait(max(0.0, next_tick - time.monotonic()))
        finally:
            for s in self.sessions.values():
                try:
                    s.close()
                except Exception:  # noqa: BLE001 - closing a dead connection
                    pass
        return self.counts

    def tick(self, name: str) -> dict | None:
        """Take and store one sample of `name`; None when it is unreachable."""
        from ...database.session import connect  # noqa: PLC0415

        row = None
        for attempt in (1, 2):  # a broken session is reopened once at once: a gap only when that fails too
            try:
                db = self.sessions.get(name)
                if db is None:
                    db = self.sessions[name] = connect(self.config.target(name), statement_timeout_ms=5000,
                                                       lock_timeout_ms=500, connect_timeout_s=5)
                row = take_sample(db)
                break
            except Exception as e:  # noqa: BLE001 - the target went away: record the gap, keep sampling
                reopened = self.sessions.get(name) is not None
                self._close(name)
                if attempt == 2 or not reopened:
                    self._lost(name, e)
                    return None
        if name in self.down:
            self.echo(f"{name}: back after {self.down.pop(name)}")
        row["target"] = name
        write_sample(self.store.engine, row)
        self.counts["samples"] += 1
        return row

    def _close(self, name: str) -> None:
        s = self.sessions.pop(name, None)
        if s is not None:
            try:
                s.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass

    def _lost(self, name: str, e: Exception) -> None:
        msg = " ".join(str(getattr(e, "orig", e)).split())[:600]
        if name not in self.down:
            self.down[name] = time.strftime("%H:%M:%SZ", time.gmtime())
            self.counts["gaps"] += 1
            write_sample(self.store.engine, {"target": name, "ts": time.time(), "status": "unreachable",
                                             "detail": {"error": msg}})
            self.echo(f"{name}: unreachable ({msg}); retrying every {self.every_s:g}s")
