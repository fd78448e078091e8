"""Readers over the snapshot store: tidy DataFrames of series, reset-safe rates, per-statement deltas."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, select

from . import store as st

CHUNK = 500  # ids per IN (...) list


def to_epoch(value: Any) -> float | None:
    """None, epoch seconds, a datetime/Timestamp or an ISO string -> epoch seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float, np.floating, np.integer)):
        return float(value)
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.timestamp()


def _ts(epoch) -> pd.Series:
    return pd.to_datetime(pd.Series(epoch, dtype=float), unit="s", utc=True)


class HistoryStore:
    """The history of snapshots in one store (opsbook.toml [history] url)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = st.make_engine(url)
        self.version = st.migrate(self.engine)
        self._snapshot_cache: dict[str, tuple[tuple, pd.DataFrame]] = {}

    def __repr__(self) -> str:
        return f"HistoryStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ snapshots
    def snapshots(self, target: str, start=None, end=None) -> pd.DataFrame:
        """The target's snapshots in [start, end], oldest first, with `ts` as a UTC datetime.

        The target's snapshots are read once per store object and reused while their count and newest id stay
        the same (one cheap aggregate per call): a report asks for them a dozen times."""
        s = st.snapshots
        with self.engine.connect() as conn:
            key = tuple(conn.execute(select(func.count(), func.max(s.c.id)).where(s.c.target == target)).one())
            cached = self._snapshot_cache.get(target)
            if cached is None or cached[0] != key:
                df = pd.read_sql(select(s).where(s.c.target == target).order_by(s.c.ts, s.c.id), conn)
                df["epoch"] = df["ts"].astype(float)
                df["ts"] = _ts(df["epoch"])
                self._snapshot_cache[target] = cached = (key, df)
        df = cached[1]
        keep = np.ones(len(df), dtype=bool)
        if start is not None:
            keep &= (df["epoch"] >= to_epoch(start)).to_numpy()
        if end is not None:
            keep &= (df["epoch"] <= to_epoch(end)).to_numpy()
        return df[keep].reset_index(drop=True).copy()

    def has_history(self, target: str) -> bool:
        """True when the target has at least two snapshots: enough for a trend."""
        with self.engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(st.snapshots)
                             .where(st.snapshots.c.target == target)).scalar()
        return bool(n and n >= 2)

    def targets(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(st.snapshots.c.target).distinct().order_by(st.snapshots.c.target))]

    def window(self, target: str, start=None, end=None) -> tuple[pd.Timestamp | None, pd.Timestamp | None, bool]:
        """(first ts, last ts, any simulated) of the target's snapshots in the window."""
        snaps = self.snapshots(target, start, end)
        if snaps.empty:
            return None, None, False
        return snaps["ts"].iloc[0], snaps["ts"].iloc[-1], bool(snaps["simulated"].any())

    # ------------------------------------------------------------------ state over time
    def state(self, target: str, kind: str, start=None, end=None, columns: list[str] | None = None,
              snaps: pd.DataFrame | None = None, name: str | None = None) -> pd.DataFrame:
        """Long frame: one row per (snapshot in window, entity of `kind` present then), values carried forward
        from the entity's last stored row. Columns: snapshot_id, ts, entity_id, key, schema_name, name, parent,
        info, and the value columns. `name`: only entities of that name (one metric)."""
        fact = st.FACTS[kind]
        value_cols = columns or [c.name for c in fact.columns if c.name not in ("entity_id", "snapshot_id")]
        snaps = self.snapshots(target, start, end) if snaps is None else snaps
        e = st.entities
        cols = [fact.c.entity_id, fact.c.snapshot_id, *[fact.c[c] for c in value_cols]]
        empty = pd.DataFrame(columns=["snapshot_id", "ts", "entity_id", "key", "schema_name", "name", "parent",
                                      "info", *value_cols])
        if snaps.empty:
            return empty
        with self.engine.connect() as conn:
            where = [e.c.target == target, e.c.kind == kind, *([e.c.name == name] if name is not None else [])]
            ents = pd.read_sql(select(e.c.id, e.c.key, e.c.schema_name, e.c.name, e.c.parent, e.c.info)
                               .where(*where), conn)
            if ents.empty:
                return empty
            first = int(snaps["id"].min())
            in_target = select(e.c.id).where(*where)
            latest = (select(fact.c.entity_id, func.max(fact.c.snapshot_id).label("sid"))
                      .where(fact.c.snapshot_id < first, fact.c.entity_id.in_(in_target))
                      .group_by(fact.c.entity_id).subquery())
            base = pd.read_sql(select(*cols).join(latest, and_(latest.c.entity_id == fact.c.entity_id,
                                                               latest.c.sid == fact.c.snapshot_id)), conn)
            ids = sorted(int(i) for i in snaps["id"])
            facts = pd.read_sql(select(*cols).where(fact.c.snapshot_id.between(ids[0], ids[-1]),
                                                    fact.c.entity_id.in_(in_target)), conn)
        # a row stored at a snapshot outside `snaps` (between two of them) counts from the next one in `snaps`
        facts["pos"] = np.searchsorted(np.asarray(ids), facts["snapshot_id"].to_numpy(), side="left")
        base["pos"] = -1
        facts = pd.concat([base, facts], ignore_index=True).sort_values(["entity_id", "snapshot_id"])
        facts = facts.drop_duplicates(subset=["entity_id", "pos"], keep="last")
        facts["_present"] = facts[value_cols].notna().any(axis=1)
        facts = facts.sort_values(["entity_id", "pos"]).reset_index(drop=True)
        facts["_row"] = np.arange(len(facts))
        grid = pd.MultiIndex.from_product([sorted(facts["entity_id"].unique()), range(-1, len(ids))],
                                          names=["entity_id", "pos"])
        rows = facts.set_index(["entity_id", "pos"])["_row"].reindex(grid)
        rows = rows.groupby(level="entity_id").ffill().dropna()
        rows = rows[rows.index.get_level_values("pos") >= 0]
        picked = facts.iloc[rows.astype(int).to_numpy()][["entity_id", "_present", *value_cols]].reset_index(drop=True)
        picked["pos"] = rows.index.get_level_values("pos").to_numpy()
        picked = picked[picked["_present"]].drop(columns="_present")
        picked["snapshot_id"] = [ids[p] for p in picked["pos"]]
        picked["ts"] = picked["snapshot_id"].map(snaps.set_index("id")["ts"])
        out = picked.merge(ents.rename(columns={"id": "entity_id"}), on="entity_id", how="left")
        return out[["snapshot_id", "ts", "entity_id", "key", "schema_name", "name", "parent", "info",
                    *value_cols]].sort_values(["ts", "key"]).reset_index(drop=True)

    # ------------------------------------------------------------------ metrics
    def series(self, target: str, metric: str, start=None, end=None, label: str = "") -> pd.DataFrame:
        """DataFrame[ts, value] of one metric (e.g. database_size_bytes, storage_objects_bytes, connections_total,
        mau) over the target's snapshots in the window, oldest first."""
        df = self.labelled(target, metric, start, end)
        df = df[df["label"] == label]
        return df[["ts", "value"]].reset_index(drop=True)

    def labelled(self, target: str, metric: str, start=None, end=None) -> pd.DataFrame:
        """DataFrame[ts, label, value] of a metric with every label (per bucket, per slot, per sequence...)."""
        df = self.state(target, "metric", start, end, name=metric)
        out = pd.DataFrame({"ts": df["ts"], "label": df["parent"].fillna(""), "value": df["value"].astype(float)})
        return out.reset_index(drop=True)

    def metrics(self, target: str) -> list[str]:
        """Names of the metric series stored for the target."""
        e = st.entities
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(e.c.name).distinct().where(
                e.c.target == target, e.c.kind == "metric").order_by(e.c.name))]

    def rates(self, target: str, metric: str, start=None, end=None, label: str = "") -> pd.DataFrame:
        """Per-second rates of a counter between consecutive snapshots: DataFrame[ts, delta, interval_s,
        rate_per_s, reset]. A counter that went down, or a pg_stat_database.stats_reset that moved, means a
        reset (pg_stat_reset(), a crash): the value after it is the delta. Never negative, never a spike."""
        snaps = self.snapshots(target, start, end)
        s = self.series(target, metric, start, end, label)
        if len(s) < 2:
            return pd.DataFrame(columns=["ts", "delta", "interval_s", "rate_per_s", "reset"])
        s = s.merge(snaps[["ts", "stats_reset", "epoch"]], on="ts", how="left")
        return counter_deltas(s["epoch"].to_numpy(), s["value"].to_numpy(), s["stats_reset"].to_numpy(),
                              s["ts"])

    # ------------------------------------------------------------------ relations
    def relation_history(self, target: str, start=None, end=None, kind: str = "table",
                         columns: list[str] | None = None) -> pd.DataFrame:
        """Long frame of tables' (or indexes') stats over time: ts, schema_name, name, parent and the columns."""
        df = self.state(target, kind, start, end, columns)
        return df.drop(columns=["info", "entity_id", "key"])

    def table_sizes(self, target: str, start=None, end=None, max_points: int | None = None) -> pd.DataFrame:
        """DataFrame[ts, schema_name, table_name, table_bytes, indexes_bytes, total_bytes], oldest first.

        `max_points`: at most that many snapshots, evenly spread over the window, first and last kept (a chart
        shows hundreds of points, not 6,000; the long frame is tables x snapshots)."""
        snaps = thinned(self.snapshots(target, start, end), max_points)
        tables = self.state(target, "table", columns=["size_bytes", "rows_est"], snaps=snaps)
        idx = self.state(target, "index", columns=["size_bytes"], snaps=snaps)
        cols = ["ts", "schema_name", "table_name", "table_bytes", "indexes_bytes", "total_bytes", "rows_est"]
        if tables.empty:
            return pd.DataFrame(columns=cols)
        per_table = (idx.groupby(["snapshot_id", "schema_name", "parent"])["size_bytes"].sum()
                     .rename("indexes_bytes").reset_index().rename(columns={"parent": "name"}))
        out = tables.merge(per_table, on=["snapshot_id", "schema_name", "name"], how="left")
        out["indexes_bytes"] = out["indexes_bytes"].fillna(0.0)
        out["table_bytes"] = out["size_bytes"]
        out["total_bytes"] = out["table_bytes"] + out["indexes_bytes"]
        out = out.rename(columns={"name": "table_name"})
        return out[cols].sort_values(["ts", "schema_name", "table_name"]).reset_index(drop=True)

    def table_growth(self, target: str, start=None, end=None, top: int = 10, *,
                     sizes: pd.DataFrame | None = None) -> pd.DataFrame:
        """Tables by growth of total bytes between the first and last snapshot of the window, biggest first.
        `sizes`: a table_sizes frame already read for the window (not read again)."""
        sizes = self.table_sizes(target, start, end) if sizes is None else sizes
        if sizes.empty:
            return pd.DataFrame(columns=["schema_name", "table_name", "first_bytes", "last_bytes", "growth_bytes",
                                         "growth_per_day_bytes"])
        g = sizes.sort_values("ts").groupby(["schema_name", "table_name"])
        out = g.agg(first_ts=("ts", "first"), last_ts=("ts", "last"), first_bytes=("total_bytes", "first"),
                    last_bytes=("total_bytes", "last")).reset_index()
        out["growth_bytes"] = out["last_bytes"] - out["first_bytes"]
        days = (out["last_ts"] - out["first_ts"]).dt.total_seconds() / 86400
        out["growth_per_day_bytes"] = np.where(days > 0, out["growth_bytes"] / days.where(days > 0, 1), 0.0)
        out = out.sort_values(["growth_bytes", "table_name"], ascending=[False, True]).head(top)
        return out.drop(columns=["first_ts", "last_ts"]).reset_index(drop=True)

    # ------------------------------------------------------------------ statements
    def statement_deltas(self, target: str, start=None, end=None) -> pd.DataFrame:
        """Per statement: what its counters added between the snapshot nearest `start` and the one nearest
        `end` (a statement reset counts from zero), with query text; by total execution time, biggest first."""
        snaps = self.snapshots(target, start, end)
        cols = list(st.STATEMENT_COLUMNS)
        out_cols = ["queryid", "role", "query", *cols, "mean_exec_time_ms"]
        if len(snaps) < 2:
            return pd.DataFrame(columns=out_cols)
        ends = snaps.iloc[[0, -1]]
        state = self.state(target, "statement", snaps=ends)
        a = state[state["snapshot_id"] == ends["id"].iloc[0]].set_index("key")
        b = state[state["snapshot_id"] == ends["id"].iloc[1]].set_index("key")
        before = a[cols].reindex(b.index)
        after = b[cols]
        reset = (after["calls"] < before["calls"]).fillna(False)
        delta = (after - before.fillna(0.0)).where(~reset, after, axis=0)
        delta = delta.clip(lower=0)
        delta["queryid"] = b["name"]
        delta["role"] = b["parent"]
        delta["query"] = b["info"]
        delta = delta[delta["calls"] > 0]
        delta["mean_exec_time_ms"] = delta["total_exec_time_ms"] / delta["calls"]
        return delta.reset_index(drop=True)[out_cols].sort_values("total_exec_time_ms", ascending=False,
                                                                   ignore_index=True)

    # ------------------------------------------------------------------ upkeep
    def stored_bytes(self) -> int | None:
        return st.store_bytes(self.engine)

    def prune(self, older_than: str | float, *, keep_daily: bool = True, target: str | None = None,
              now: float | None = None):
        """Delete snapshots older than `older_than` ('90d' or seconds); see opsbook.history.prune."""
        from .prune import parse_duration, prune  # noqa: PLC0415

        seconds = parse_duration(older_than) if isinstance(older_than, str) else float(older_than)
        self._snapshot_cache.clear()
        return prune(self, seconds, keep_daily=keep_daily, target=target, now=now)

    def delete_target(self, target: str) -> int:
        """Forget every snapshot of a target (the demo replay starts its history afresh)."""
        from sqlalchemy import delete  # noqa: PLC0415

        e, s = st.entities, st.snapshots
        self._snapshot_cache.pop(target, None)
        with self.engine.begin() as conn:
            ids = select(e.c.id).where(e.c.target == target)
            for fact in (st.relation_stats, st.statement_stats, st.points):
                conn.execute(delete(fact).where(fact.c.entity_id.in_(ids)))
            conn.execute(delete(e).where(e.c.target == target))
            return conn.execute(delete(s).where(s.c.target == target)).rowcount or 0


def thinned(snaps: pd.DataFrame, max_points: int | None) -> pd.DataFrame:
    """At most `max_points` snapshots, the nearest to evenly spaced times, first and last always kept."""
    if not max_points or len(snaps) <= max_points:
        return snaps
    epoch = snaps["epoch"].to_numpy()
    wanted = np.linspace(epoch[0], epoch[-1], max_points)
    pos = np.unique(np.clip(np.searchsorted(epoch, wanted), 0, len(snaps) - 1))
    return snaps.iloc[pos].reset_index(drop=True)


def counter_deltas(epoch, values, stats_reset, ts) -> pd.DataFrame:
    """Reset-aware deltas of a cumulative counter (see HistoryStore.rates)."""
    epoch = np.asarray(epoch, dtype=float)
    v = np.asarray(values, dtype=float)
    sr = np.asarray(stats_reset, dtype=float)
    d = np.diff(v)
    moved = ~np.isclose(np.nan_to_num(sr[1:], nan=-1), np.nan_to_num(sr[:-1], nan=-1)) & (sr[1:] > epoch[:-1])
    reset = (d < 0) | moved
    delta = np.where(reset, v[1:], d)
    interval = np.diff(epoch)
    rate = np.where(interval > 0, delta / np.where(interval > 0, interval, 1), np.nan)
    return pd.DataFrame({"ts": pd.Series(ts).iloc[1:].reset_index(drop=True), "delta": delta,
                         "interval_s": interval, "rate_per_s": rate, "reset": reset})
