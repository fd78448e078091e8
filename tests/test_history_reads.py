"""How the history store is read: snapshots read once per store and refreshed when one is added, thinned series."""
from __future__ import annotations

import pandas as pd

from opsbook import history
from opsbook.config.file import from_dict
from opsbook.history.readers import thinned


def test_snapshots_are_read_once_yet_a_new_snapshot_is_seen_and_growth_reads_sizes_once(db, tmp_path):
    db.execute("CREATE TABLE items (id serial PRIMARY KEY, body text)")
    config = from_dict({"targets": {"test": {"dsn": db.conninfo}},
                        "history": {"url": f"sqlite:///{tmp_path / 'h.sqlite'}"}})
    history.take_snapshot(config, "test")
    store = history.open_store(config)
    first = store.snapshots("test")
    assert len(first) == 1 and store.snapshots("test") is not store.snapshots("test"), "callers get copies"
    db.execute("INSERT INTO items (body) SELECT repeat('x', 500) FROM generate_series(1, 5000);"
               "SELECT pg_stat_force_next_flush()")
    history.take_snapshot(config, "test")  # written through another store object
    assert len(store.snapshots("test")) == 2, "a snapshot added since the last read is seen"
    assert len(store.snapshots("test", start=store.snapshots("test")["epoch"].iloc[1])) == 1
    sizes = store.table_sizes("test", max_points=400)
    assert store.table_growth("test", sizes=sizes).equals(store.table_growth("test"))


def test_thinning_keeps_the_ends_and_at_most_the_points_asked():
    epoch = pd.Series(range(0, 6000 * 900, 900), dtype=float)
    snaps = pd.DataFrame({"id": range(6000), "epoch": epoch})
    thin = thinned(snaps, 400)
    assert len(thin) <= 400 and len(thin) > 390
    assert thin["id"].iloc[0] == 0 and thin["id"].iloc[-1] == 5999 and thin["id"].is_monotonic_increasing
    assert thinned(snaps.head(50), 400) is not None and len(thinned(snaps.head(50), 400)) == 50
