"""Replay weeks of growth in the demo database: real inserts and updates per simulated day, a snapshot after each.

The clock is simulated: day d of N covers [now - (N - d + 1) days, now - (N - d) days), so the replayed history
ends a day before the real now and never disturbs the demo's "last hour" and "last 9 hours" problems. New rows are
clones of sampled existing rows (so every CHECK, foreign key and distribution holds), with fresh keys, unique text
made unique, and timestamps moved to the simulated day. Every snapshot is stored with `simulated = true`.
"""
from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

# (table, rows inserted on day 0, rows updated per day, column an update moves to the simulated time).
# Growth accelerates: day d inserts base * (1 + 1.5 d / N), less on weekends. Tables that carry the demo's
# deliberate problems (notifications, automation_jobs, scraping_logs, scraping_sessions, public_share_tokens)
# are left alone so the problems stay as documented.
PLAN: tuple[tuple[str, int, int, str | None], ...] = (
    ("public.vehicle_listings", 1500, 800, "updated_at"),
    ("public.analytics_events", 1500, 0, None),
    ("public.metrics", 800, 0, None),
    ("public.messages", 500, 0, None),
    ("public.interactions", 300, 0, None),
    ("public.leads", 120, 80, "updated_at"),
    ("public.conversations", 60, 40, "updated_at"),
    ("public.valuations", 40, 20, "updated_at"),
    ("public.quotes", 20, 10, "updated_at"),
    ("public.support_tickets", 15, 10, "updated_at"),
    ("storage.objects", 60, 10, "updated_at"),
    ("auth.users", 40, 150, "last_sign_in_at"),
    ("auth.audit_log_entries", 300, 0, None),
)
NOTE = "replayed by opsbook demo: real rows, simulated clock"
Progress = Callable[[str], None]


@dataclass
class ReplayResult:
    days: int
    snapshots: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    seconds: float = 0.0
    first_ts: float | None = None
    last_ts: float | None = None
    size_start_bytes: float | None = None
    size_end_bytes: float | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        grow = ""
        if self.size_start_bytes and self.size_end_bytes:
            grow = f", database {self.size_start_bytes / 2**20:,.0f} -> {self.size_end_bytes / 2**20:,.0f} MB"
        return (f"history: replayed {self.days} days with a simulated clock ({self.rows_inserted:,} rows inserted, "
                f"{self.rows_updated:,} updated, {self.snapshots} snapshots{grow}) in {self.seconds:.1f} s")


def replay_history(server, days: int = 60, progress: Progress | None = None, *, config=None, target: str = "demo",
                   dbname: str = "demo", seed: int = 1, replace: bool = True, scale: float = 1.0) -> ReplayResult:
    """Grow the demo database `dbname` on `server` day by day for `days` simulated days, storing a snapshot after
    each under `target` in the configuration's history store. `replace` forgets the target's earlier history (it
    described a database that was rebuilt). `scale` multiplies every row count (tests use a small one)."""
    from ..config.file import Target, load  # noqa: PLC0415
    from ..database.session import connect, raw_connect  # noqa: PLC0415
    from . import open_store, take_snapshot  # noqa: PLC0415

    t0 = time.perf_counter()
    say = progress or (lambda line: None)
    config = config or load()
    conninfo = server.conninfo(dbname=dbname)
    tgt = Target(target, dsn=conninfo)
    result = ReplayResult(days)
    store = open_store(config)
    rng = random.Random(seed)
    now = time.time()
    run_tag = secrets.token_hex(4)  # unique text of clones differs from one replay to the next
    try:
        if replace:
            store.delete_target(target)
        with connect(tgt, statement_timeout_ms=120_000) as session:
            tables = _clonable(session, result)
            writer = raw_connect(conninfo, read_only=False, statement_timeout_ms=120_000, lock_timeout_ms=5_000)
            try:
                writer.execute("SET synchronous_commit = off")
                writer.execute("SET pg_stat_statements.track = 'none'")  # keep the demo's statement story clean
                for d in range(days):
                    day_start = now - (days - d + 1) * 86400
                    weekday = time.gmtime(day_start).tm_wday
                    factor = scale * (1 + 1.5 * d / max(days - 1, 1)) * (0.6 if weekday >= 5 else 1.0)
                    for table, base, updates, touch in PLAN:
                        if table not in tables:
                            continue
                        n = max(1, round(base * factor * rng.uniform(0.85, 1.15)))
                        m = round(updates * scale)
                        _day(writer, table, tables[table], n, m, touch, day_start, f"-r{run_tag}-{d}-", result)
                    writer.execute("SELECT pg_stat_force_next_flush()")
                    snap = take_snapshot(config, target, store=store, db=session, as_of=day_start + 86400 - 1,
                                         simulated=True, heavy=True, budget_ms=60_000, note=NOTE)
                    result.snapshots += 1
                    result.first_ts = result.first_ts or snap.ts
                    result.last_ts = snap.ts
                    if d % 10 == 9 or d == days - 1:
                        say(f"history: simulated day {d + 1}/{days} ({result.rows_inserted:,} rows so far)")
            finally:
                writer.close()
        sizes = store.series(target, "database_size_bytes")["value"]
        if len(sizes):
            result.size_start_bytes, result.size_end_bytes = float(sizes.iloc[0]), float(sizes.iloc[-1])
    finally:
        store.close()
    result.seconds = time.perf_counter() - t0
    say(result.line())
    return result


def _clonable(session, result: ReplayResult) -> dict[str, dict]:
    """For each planned table present: the INSERT column list and SELECT expressions that clone a sampled row."""
    cols = session.fetch("history/replay_columns", tables=[t for t, *_ in PLAN])
    out = {}
    for (schema, table), df in cols.groupby(["schema_name", "table_name"], sort=False):
        name = f"{schema}.{table}"
        names, exprs, why = [], [], None
        anchor = next((c for c in ("created_at", "inserted_at", "ts", "occurred_at")
                       if c in set(df["column_name"])), None)
        if anchor is None:
            stamps = df[df["column_type"].isin(["timestamp with time zone", "timestamp without time zone"])]
            anchor = stamps["column_name"].iloc[0] if len(stamps) else None
        for c in df.itertuples():
            q = _ident(c.column_name)
            if c.generated_kind or c.identity_kind or c.default_expr.startswith("nextval("):
                continue  # the table makes these itself
            if c.in_unique and not c.in_fk:  # a key part that references another table stays as it is
                if c.column_type == "uuid":
                    exprs.append("gen_random_uuid()")
                elif c.type_category == "S":
                    exprs.append(f"s.{q} || %(tag)s || row_number() OVER ()")
                else:
                    why = f"unique column {c.column_name} of type {c.column_type} cannot be cloned"
                    break
            elif c.column_type in ("timestamp with time zone", "timestamp without time zone") and anchor:
                # shift every timestamp by the same offset (created < updated < expires hold), never past the day
                exprs.append(f"least(s.{q} + (%(day)s - coalesce(s.{_ident(anchor)}, %(day)s)), %(day_end)s)"
                             f"::{c.column_type}")
            else:
                exprs.append(f"s.{q}")
            names.append(q)
        if why:
            result.skipped[name] = why
            continue
        qualified = ".".join(_ident(p) for p in (schema, table))
        out[name] = {"qualified": qualified, "columns": ", ".join(names), "exprs": ", ".join(exprs),
                     "rows_est": float(df["rows_est"].iloc[0]), "anchor": anchor,
                     "has": set(df["column_name"])}
    return out


def _day(writer, name: str, spec: dict, n: int, m: int, touch: str | None, day_start: float, tag: str,
         result: ReplayResult) -> None:
    """One simulated day of one table: clone n sampled rows, update m; a table that fails is skipped from then on."""
    if name in result.skipped:
        return
    import datetime as dt  # noqa: PLC0415

    day = dt.datetime.fromtimestamp(day_start, tz=dt.timezone.utc)
    params = {"day": day, "day_end": day + dt.timedelta(seconds=86399), "tag": tag, "n": n}
    pct = min(100.0, 100.0 * 3 * n / max(spec["rows_est"], 1.0))
    sample = f"(SELECT * FROM {spec['qualified']} TABLESAMPLE SYSTEM ({pct:.4f}) LIMIT %(n)s)"
    try:
        with writer.transaction():
            cur = writer.execute(f"INSERT INTO {spec['qualified']} ({spec['columns']}) "
                                 f"SELECT {spec['exprs']} FROM {sample} s", params)
            result.rows_inserted += cur.rowcount
            if m and touch and touch in spec["has"]:
                col = _ident(touch)
                upct = min(100.0, 100.0 * 3 * m / max(spec["rows_est"], 1.0))
                cur = writer.execute(
                    f"UPDATE {spec['qualified']} SET {col} = %(day)s + random() * interval '86399 seconds' "
                    f"WHERE ctid = ANY (ARRAY(SELECT ctid FROM {spec['qualified']} TABLESAMPLE SYSTEM ({upct:.4f}) "
                    f"WHERE {col} IS NULL OR {col} < %(day)s LIMIT %(m)s))", {**params, "m": m})
                result.rows_updated += cur.rowcount
        spec["rows_est"] += n
    except Exception as e:  # noqa: BLE001 - one table the clone rule cannot fit must not stop the replay
        result.skipped[name] = " ".join(str(e).split())[:200]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
