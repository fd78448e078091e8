"""Last-resort cleanup in the process that owns scratch clusters: at exit, and on SIGTERM/SIGHUP."""
from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading

_live: dict[int, object] = {}  # id -> ScratchCluster
_lock = threading.Lock()
_previous: dict[int, object] = {}
SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def register(cluster) -> None:
    with _lock:
        _live[id(cluster)] = cluster
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                if sig not in _previous:
                    with contextlib.suppress(ValueError, OSError):
                        _previous[sig] = signal.signal(sig, _on_signal)


def unregister(cluster) -> None:
    with _lock:
        _live.pop(id(cluster), None)
        if not _live and threading.current_thread() is threading.main_thread():
            for sig, handler in list(_previous.items()):
                with contextlib.suppress(ValueError, OSError, TypeError):
                    signal.signal(sig, handler)
                _previous.pop(sig, None)


def live() -> list:
    """The clusters this process runs now."""
    with _lock:
        return list(_live.values())


def cleanup_all() -> None:
    for cluster in list(_live.values()):
        with contextlib.suppress(Exception):
            cluster.destroy()


def _on_signal(signum, frame) -> None:
    """Drop every live scratch cluster, then do what the signal would have done."""
    cleanup_all()
    previous = _previous.pop(signum, signal.SIG_DFL)
    with contextlib.suppress(ValueError, OSError, TypeError):
        signal.signal(signum, previous)
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        os.kill(os.getpid(), signum)


atexit.register(cleanup_all)
