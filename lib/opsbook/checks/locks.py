"""Locks: the whole blocking tree (root blockers, depth, every waiter) and the deadlocks the server counted."""
from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from ..core.display import human_seconds
from ..core.findings import Finding, Severity, grade
from .registry import Check, CheckContext, Threshold, register
from .visibility import partial

def _num(x, default: float = 0.0) -> float:
    """A number from a row, NULL/NaN as `default`."""
    return default if x is None or x != x else float(x)


DEFAULT_WINDOW_MINUTES = 60


def counter_window(ctx: CheckContext, metric: str, live: float, stats_reset) -> dict | None:
    """How much a cumulative pg_stat_database counter grew over the run's window (`window_minutes`, default 60),
    against the oldest snapshot of the history store inside it: {"delta", "window_s"}.

    None without a store, without a snapshot in the window, or when the counter was reset since; the store is
    only read, never created.
    """
    config = getattr(ctx, "config", None)
    if config is None or ctx.target is None:
        return None
    url = config.history_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return None
    from ..history.capacity import store_for  # noqa: PLC0415 - only with history

    store = store_for(ctx)
    if store is None:
        return None
    now = time.time()
    window_s = 60 * float((ctx.params or {}).get("window_minutes") or DEFAULT_WINDOW_MINUTES)
    try:
        series = store.series(ctx.target.name, metric, start=now - window_s, end=now)
    except Exception:  # noqa: BLE001 - an unreadable store is no history, never a crash
        return None
    if series.empty:
        return None
    first = series.iloc[0]
    base = first["ts"].timestamp()
    reset = stats_reset is not None and str(stats_reset) not in ("NaT", "None") and stats_reset.timestamp() > base
    if reset or live < first["value"]:
        return None
    return {"delta": live - float(first["value"]), "window_s": now - base}


def since_reset(stats_reset) -> str:
    """'since 2026-11-02 10:00 UTC' for a pg_stat_database.stats_reset, or 'since statistics began'."""
    if stats_reset is None or str(stats_reset) in ("NaT", "nan", "None"):
        return "since statistics began (never reset)"
    return f"since {stats_reset:%Y-%m-%d %H:%M %Z}".rstrip()


TREE_COLUMNS = ["tree", "pid", "state", "lock_type", "lock_mode", "lock_target", "wait_s", "xact_age_s", "role",
                "application_name", "query"]


def blocking_tree(ctx: CheckContext):
    """Every session in a blocking tree, in tree order, with root_pid, parent_pid, depth and blocked count."""
    return build_tree(ctx.db.fetch("locks/blocking"))


def build_tree(df):
    """Order the rows of locks/blocking as trees: roots (blockers not waiting themselves) first, waiters below.

    A waiter with several blockers is drawn under the first one reached from a root (breadth first), so depth
    is the shortest distance from a root. A cycle with no root (a deadlock the server has not broken yet) is
    rooted at its oldest transaction. Linear in sessions and edges (a queue of N waiters on one lock has ~N²/2
    edges, since each waiter is also blocked by those queued before it): every edge is read once to build the
    tree and once to count descendants.
    """
    import pandas as pd  # noqa: PLC0415

    cols = ["root_pid", "parent_pid", "depth", "blocked_count", "tree"]
    if df.empty:
        return df.assign(**{c: pd.Series(dtype="int64" if c != "tree" else "object") for c in cols})
    pids = [int(p) for p in df["pid"]]
    at = {pid: i for i, pid in enumerate(pids)}
    wait = pd.to_numeric(df["wait_s"], errors="coerce").fillna(0.0).tolist()
    xact = pd.to_numeric(df["xact_age_s"], errors="coerce").fillna(0.0).tolist()
    blockers = [{at[b] for b in (bs if bs is not None else ()) if b in at} - {i}
                for i, bs in enumerate(df["blocked_by"])]
    # children in drawing order (longest wait first) by adding waiters in that order: no sort per blocker
    children: list[list[int]] = [[] for _ in pids]
    for i in sorted(range(len(pids)), key=lambda i: (-wait[i], pids[i])):
        for b in blockers[i]:
            children[b].append(i)
    blocked = _descendant_counts(blockers, children)
    root_of, parent, depth = [-1] * len(pids), [-1] * len(pids), [0] * len(pids)
    kids: list[list[int]] = [[] for _ in pids]  # the tree drawn: each waiter under one parent

    def walk(root: int) -> None:
        root_of[root] = root
        queue = deque([root])
        while queue:
            p = queue.popleft()
            for k in children[p]:
                if root_of[k] < 0:
                    root_of[k], parent[k], depth[k] = root, p, depth[p] + 1
                    kids[p].append(k)
                    queue.append(k)

    roots = sorted((i for i in range(len(pids)) if not blockers[i]), key=lambda i: (-blocked[i], -xact[i], pids[i]))
    for r in roots:
        walk(r)
    for i in sorted(range(len(pids)), key=lambda i: (-xact[i], pids[i])):  # a cycle: from its oldest transaction
        if root_of[i] < 0:
            roots.append(i)
            walk(i)
    order: list[int] = []
    for r in roots:
        stack = [r]  # preorder without recursion: a chain of 1,000 waiters is 1,000 levels deep
        while stack:
            i = stack.pop()
            order.append(i)
            stack.extend(reversed(kids[i]))
    tree = df.iloc[order].reset_index(drop=True)
    pad = "\u00a0\u00a0\u00a0"
    tree = tree.assign(
        root_pid=[pids[root_of[i]] for i in order],
        parent_pid=pd.array([pids[parent[i]] if parent[i] >= 0 else None for i in order], dtype="Int64"),
        depth=[depth[i] for i in order], blocked_count=[blocked[i] for i in order],
        tree=[pad * max(depth[i] - 1, 0) + ("└─\u00a0" if depth[i] else "") + str(pids[i]) for i in order])
    return tree.astype({"root_pid": "int64", "depth": "int64", "blocked_count": "int64"})


def _descendant_counts(blockers: list[set[int]], children: list[list[int]]) -> list[int]:
    """How many distinct sessions wait, directly or not, behind each one (by index).

    One bitset row per session (numpy, 64 sessions a word), merged leaves first: one OR per edge. Sessions in or
    above a cycle, which that order never reaches, are searched once each.
    """
    import numpy as np  # noqa: PLC0415

    n = len(children)
    words = (n + 63) // 64
    own = np.zeros((n, words), dtype=np.uint64)
    own[np.arange(n), np.arange(n) // 64] = np.left_shift(np.uint64(1), (np.arange(n) % 64).astype(np.uint64))
    below = np.zeros((n, words), dtype=np.uint64)
    done = [False] * n
    pending = [len(k) for k in children]
    ready = [i for i in range(n) if not pending[i]]
    while ready:
        i = ready.pop()
        if children[i]:
            k = np.fromiter(children[i], dtype=np.intp, count=len(children[i]))
            below[i] = np.bitwise_or.reduce(below[k] | own[k], axis=0)
        done[i] = True
        for b in blockers[i]:
            pending[b] -= 1
            if not pending[b]:
                ready.append(b)
    for i in range(n):
        if done[i]:
            continue
        seen, stack = {i}, list(children[i])
        acc = np.zeros(words, dtype=np.uint64)
        while stack:
            j = stack.pop()
            if j in seen:
                continue
            seen.add(j)
            acc |= own[j]
            if done[j]:
                acc |= below[j]
            else:
                stack.extend(children[j])
        below[i] = acc & ~own[i]
    return np.bitwise_count(below).sum(axis=1).astype(int).tolist()


def _remedy(root) -> str:
    pid, state = int(root["pid"]), root["state"] or ""
    if pid == 0:
        return ("A prepared transaction holds the lock: SELECT gid, prepared, owner FROM pg_prepared_xacts; then "
                "COMMIT PREPARED or ROLLBACK PREPARED that gid.")
    if state == "hidden":
        return (f"SELECT pg_cancel_backend({pid});  -- this role cannot see what the root is doing (another role's "
                f"session; see the partial-visibility finding); if it does not let go: SELECT pg_terminate_backend({pid});")
    if state.startswith("idle in transaction") or state == "idle":
        return (f"SELECT pg_terminate_backend({pid});  -- the root is {state}: nothing to cancel, ending the "
                "session releases its locks (its transaction rolls back)")
    return (f"SELECT pg_cancel_backend({pid});  -- the root is {state or 'running'}; if it does not let go: "
            f"SELECT pg_terminate_backend({pid});")


def judge_blocking(df, *, min_wait_s: float = 1, warning: float = 1, critical: float = 5,
                   critical_wait_s: float = 120) -> list[Finding]:
    out = []
    for root_pid, tree in (df.groupby("root_pid", sort=False) if len(df) else []):
        root = tree[tree["depth"] == 0].iloc[0]
        waiters = tree[tree["depth"] > 0]
        longest = float(waiters["wait_s"].max()) if len(waiters) else 0.0
        if longest < min_wait_s:
            continue  # ordinary, short contention
        n, deepest = len(waiters), int(waiters["depth"].max()) if len(waiters) else 0
        sev = max(grade(n, warning, critical), grade(longest, critical_wait_s, critical_wait_s),
                  key=lambda s: s.rank)
        if sev is Severity.OK:
            continue
        kinds = waiters.groupby("lock_type", dropna=False).size()
        waits_on = ", ".join(f"{k} x{v}" for k, v in kinds.items())
        relations = sorted(set(waiters["relation"].dropna())) if "relation" in waiters else []
        keys = sorted(set(waiters.loc[waiters["lock_type"].eq("advisory"), "lock_target"].dropna()))
        targets = relations + keys  # what the sessions queue for; transaction ids mean nothing to a reader
        state = root["state"] or "unknown"
        age = f" for {human_seconds(_num(root['state_s']))}" if root["pid"] and _num(root["state_s"], -1) >= 0 else ""
        out.append(Finding(
            "locks.blocking", sev,
            f"pid {int(root_pid)} ({state}{age}) blocks {n} session{'s' * (n != 1)}, "
            f"{deepest} level{'s' * (deepest != 1)} deep",
            detail=f"Root: role {root['role'] or '-'}, application {root['application_name'] or '-'}, "
                   + ("its transaction and query are hidden from this role" if state == "hidden" else
                      f"transaction open {human_seconds(_num(root['xact_age_s']))}"
                      if _num(root["xact_age_s"], -1) >= 0 else "no transaction open (a session-level lock)")
                   + ("" if state == "hidden" else f", last query: {(root['query'] or '')[:200]}") + ". "
                   f"Waiting on: {waits_on}; longest wait {human_seconds(longest)}.",
            objects=[f"pid {int(root_pid)}"] + targets[:10], value=n,
            threshold=critical if sev is Severity.CRITICAL else warning, remediation=_remedy(root)))
    if not out:
        waiting = int((df["depth"] > 0).sum()) if len(df) else 0
        out.append(Finding("locks.blocking", Severity.OK,
                           f"no session blocked for {human_seconds(min_wait_s)} or more ({waiting} waiting briefly)",
                           value=0, threshold=warning))
    hidden = int(df["hidden"].fillna(False).astype(bool).sum()) if len(df) and "hidden" in df else 0
    return out + partial("locks.blocking", hidden, "sessions in blocking trees belong to other roles whose state and "
                         "query this role cannot see",
                         "The trees themselves are complete (from pg_locks, readable by every role); what the "
                         "hidden sessions are doing (idle in transaction or running what) is not.")


BLOCKING = register(Check(
    id="locks.blocking",
    description="The whole blocking tree from pg_blocking_pids(): root blockers (with their state, e.g. idle in "
                "transaction), depth, every waiter with its wait time and lock type (relation, tuple, "
                "transactionid, advisory); one finding per root.",
    data=blocking_tree,
    judge=judge_blocking,
    thresholds=(
        Threshold("min_wait_s", 1, "seconds waited", "PostgreSQL default deadlock_timeout (1 s), after which "
                  "log_lock_waits reports a wait"),
        Threshold("warning", 1, "sessions blocked by one root", "source guide 001: sessions waiting on locks"),
        Threshold("critical", 5, "sessions blocked by one root", "opsbook default: a pile-up, not one unlucky "
                  "request"),
        Threshold("critical_wait_s", 120, "seconds waited", "supabase/cli inspect rules.toml: locks older than "
                  "2 minutes"),
    ),
    queries=("locks/blocking",),
    runbooks=("incident-triage",),
))


def with_window(ctx: CheckContext, df, counter: str, metric: str):
    """Add window_<counter> and window_s: the counter's growth over the run's window, from history (no columns
    without history)."""
    grown = [counter_window(ctx, metric, float(r[counter]), r["stats_reset"]) for r in df.to_dict("records")]
    if not any(grown):
        return df
    return df.assign(**{f"window_{counter}": [g and g["delta"] for g in grown],
                        "window_s": [g and g["window_s"] for g in grown]})


def window_text(row, counter: str) -> tuple[float, str]:
    """(the count to judge, 'in the last 45 min' or 'since ...') for one row of with_window()."""
    win = getattr(row, f"window_{counter}", None)
    if win is not None and win == win:
        return float(win), f"in the last {human_seconds(row.window_s)} (history)"
    return float(getattr(row, counter)), since_reset(row.stats_reset)


def deadlock_counts(ctx: CheckContext):
    return with_window(ctx, ctx.db.fetch("locks/deadlocks"), "deadlocks", "deadlocks")


def judge_deadlocks(df, *, warning: float = 1, critical: float = 50) -> list[Finding]:
    out = []
    for row in df.itertuples():
        n, since = window_text(row, "deadlocks")
        sev = grade(n, warning, critical)
        if sev is Severity.OK:
            out.append(Finding("locks.deadlocks", Severity.OK, f"no deadlock in database {row.datname} {since}",
                               value=int(n), threshold=warning))
            continue
        out.append(Finding(
            "locks.deadlocks", sev, f"{n:,.0f} deadlock{'s' * int(n != 1)} in database {row.datname} {since}",
            detail="PostgreSQL broke each one by cancelling a transaction: the app saw 'deadlock detected' errors. "
                   "The server log names both statements of each deadlock.",
            objects=[row.datname], value=int(n), threshold=critical if sev is Severity.CRITICAL
            else warning,
            remediation="Read the server log for 'deadlock detected' (Supabase: Logs > Postgres): it names both "
                        "statements. Then make the code take row locks in one consistent order (ORDER BY id ... FOR "
                        "UPDATE), keep transactions short, and retry on SQLSTATE 40P01."))
    return out or [Finding("locks.deadlocks", Severity.OK, "no deadlock counters readable", value=0)]


DEADLOCKS = register(Check(
    id="locks.deadlocks",
    description="Deadlocks the server detected in this database: over the run's window (window_minutes) when the "
                "history store has a snapshot in it, else since the last statistics reset.",
    data=deadlock_counts,
    judge=judge_deadlocks,
    thresholds=(
        Threshold("warning", 1, "deadlocks in the window (or since statistics reset)", "PostgreSQL docs 13.3.4: deadlocks are avoidable by a consistent "
                  "lock order; any one is an application bug"),
        Threshold("critical", 50, "deadlocks in the window (or since statistics reset)", "opsbook default: a recurring pattern, not a one-off"),
    ),
    queries=("locks/deadlocks",),
    runbooks=("incident-triage",),
))
