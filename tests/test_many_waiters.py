"""locks.blocking on a pile of real waiters: a queue (~n²/2 edges) and a deep chain, checked exactly and against a
brute-force count of descendants (benchmarks/many_waiters.py runs 1,000)."""
from __future__ import annotations

import pytest

from conftest import _server, drop_database, make_database
from faults import Faults, waiter_chain, waiter_queue
from opsbook.run.context import Runbook

QUEUE, CHAIN = 100, 20


@pytest.fixture(scope="module")
def roomy(tmp_path_factory):
    """A server with room for the pile (the suite's others allow 60 connections)."""
    server = _server(tmp_path_factory, "pg-roomy", max_connections="200")
    yield server
    server.stop()


def brute_force_descendants(tree) -> dict[int, int]:
    children: dict[int, set[int]] = {int(p): set() for p in tree["pid"]}
    for p, blocked_by in zip(tree["pid"], tree["blocked_by"]):
        for b in blocked_by:
            children[int(b)].add(int(p))
    out = {}
    for p in children:
        seen, stack = set(), list(children[p])
        while stack:
            q = stack.pop()
            if q not in seen:
                seen.add(q)
                stack.extend(children[q])
        out[p] = len(seen - {p})
    return out


def test_a_queue_and_a_chain_of_120_waiters_make_the_exact_tree(roomy):
    d = make_database(roomy)
    try:
        with Faults(d.conninfo) as f:
            queue, chain = waiter_queue(f, QUEUE), waiter_chain(f, CHAIN)
            rb = Runbook("incident-triage", "test", config=d.config(), thresholds={"locks.blocking": {"min_wait_s": 0}})
            assert rb.connect() is not None
            rb.run(["locks.blocking"])
            tree = rb.data("locks.blocking")
            rb.close()
    finally:
        drop_database(d)
    t = tree.set_index("pid")
    assert len(tree) == QUEUE + CHAIN + 2
    assert t["blocked_count"].to_dict() == brute_force_descendants(tree)
    w = queue["waiters"]
    assert sorted(t.loc[w[5], "blocked_by"]) == sorted(w[:5])  # the first waiter and those queued ahead of it
    assert (t.loc[queue["root"], "blocked_count"], t.loc[queue["root"], "depth"]) == (QUEUE, 0)
    assert [int(t.loc[p, "blocked_count"]) for p in w] == [QUEUE - 1 - k for k in range(QUEUE)]
    assert t.loc[w[0], "depth"] == 1 and set(t.loc[w[1:], "depth"]) == {2} and set(t.loc[w[1:], "parent_pid"]) == {w[0]}
    c = chain["waiters"]
    assert [int(t.loc[p, "depth"]) for p in c] == list(range(1, CHAIN + 1))
    assert [int(t.loc[p, "blocked_count"]) for p in [chain["root"], *c]] == list(range(CHAIN, -1, -1))
    order = list(tree["pid"])  # tree order: each root, then its subtree, parents before children
    assert order.index(chain["root"]) < order.index(c[0]) < order.index(c[-1])
    findings = {f.objects[0]: f for f in rb.findings if f.check == "locks.blocking"}
    assert (findings[f"pid {queue['root']}"].value, findings[f"pid {chain['root']}"].value) == (QUEUE, CHAIN)
    assert f"{CHAIN} levels deep" in findings[f"pid {chain['root']}"].title
