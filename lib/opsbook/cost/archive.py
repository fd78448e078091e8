"""How many bytes rows older than N days take, per table, estimated cheaply from each table's own timestamp column.

Estimate: share of rows older than the cutoff × the table's size with its indexes and TOAST. The share comes from
the planner's statistics of the column (most common values plus the equal-frequency histogram, interpolated
linearly inside the bucket the cutoff falls in), as of the table's last ANALYZE; a table without statistics is
counted on a bounded block sample (TABLESAMPLE SYSTEM of about 1,000 pages, at most 100,000 rows). Rows are
assumed to be of similar size whatever their age.
"""
from __future__ import annotations

import bisect
import time
from typing import Any, Iterable

# Creation-time columns, most telling first; `updated_at` is left out on purpose (a recently updated row is live).
COLUMNS = ("created_at", "inserted_at", "created", "created_on", "creation_date", "occurred_at", "event_time",
           "logged_at", "recorded_at", "sent_at", "timestamp", "ts")
SAMPLE_PAGES = 1000
SAMPLE_MAX_ROWS = 100_000


def fraction_older(cutoff: float, histogram: Iterable[float] | None, mcv: Iterable[float] | None = None,
                   mcv_freqs: Iterable[float] | None = None, null_frac: float | None = 0.0) -> float | None:
    """Share of all rows whose value is below `cutoff` (epoch seconds), from pg_stats; None without statistics."""
    hist = sorted(float(x) for x in (histogram or []))
    mcv = [float(x) for x in (mcv or [])]
    freqs = [float(x) for x in (mcv_freqs or [])]
    if len(hist) < 2 and not mcv:
        return None
    null_frac = float(null_frac or 0.0)
    below = sum(f for v, f in zip(mcv, freqs) if v < cutoff)
    hist_mass = max(0.0, 1.0 - null_frac - sum(freqs))
    if len(hist) >= 2:
        below += hist_mass * _position(cutoff, hist)
    return min(1.0, max(0.0, below))


def _position(x: float, bounds: list[float]) -> float:
    """Where x falls in an equal-frequency histogram, 0..1."""
    if x <= bounds[0]:
        return 0.0
    if x >= bounds[-1]:
        return 1.0
    i = bisect.bisect_right(bounds, x) - 1
    lo, hi = bounds[i], bounds[i + 1]
    inside = (x - lo) / (hi - lo) if hi > lo else 1.0
    return (i + inside) / (len(bounds) - 1)


def quote_ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def estimate(db, days: int, *, tables: list[str] | None = None, now: float | None = None):
    """Per table: bytes of rows older than `days`, how it was estimated; largest first."""
    import pandas as pd  # noqa: PLC0415

    from ..database import sql as sqlfiles  # noqa: PLC0415

    cutoff = (now if now is not None else time.time()) - days * 86400
    df = db.fetch("cost/timestamp_columns", column_names=list(COLUMNS))
    if tables:
        wanted = set(tables)
        df = df[df.apply(lambda r: r["table_name"] in wanted or f"{r['schema']}.{r['table_name']}" in wanted, axis=1)]
    rows: list[dict[str, Any]] = []
    template = sqlfiles.load("cost/sample_older", db.server_version_num)
    for r in df.itertuples(index=False):
        share = fraction_older(cutoff, r.histogram_epoch, r.mcv_epoch, r.mcv_freqs, r.null_frac)
        method = f"planner statistics of {r.column_name} (last ANALYZE)"
        if share is None and r.policies_would_run:
            method = ("not sampled: row-level security is on and this role does not bypass it (its policies would "
                      "run with opsbook's privileges)")
        elif share is None:
            pages = int(r.pages or 0)
            pct = 100.0 if pages <= SAMPLE_PAGES else 100.0 * SAMPLE_PAGES / pages
            text = template.format(relation=f"{quote_ident(r.schema)}.{quote_ident(r.table_name)}",
                                   column=quote_ident(r.column_name))
            s = db.query(text, _name="cost/sample_older", cutoff_epoch=cutoff, pct=pct,
                         max_rows=SAMPLE_MAX_ROWS).iloc[0]
            share = float(s["older"]) / s["sampled"] if s["sampled"] else 0.0
            method = f"counted {int(s['sampled']):,} sampled rows ({pct:.3g}% of pages) by {r.column_name}"
        rows.append({"schema": r.schema, "table_name": r.table_name, "column_name": r.column_name,
                     "total_bytes": int(r.total_bytes),
                     "older_pct": round(100 * share, 2) if share is not None else float("nan"),
                     "older_bytes": int(round(share * r.total_bytes)) if share is not None else 0, "method": method})
    out = pd.DataFrame(rows, columns=["schema", "table_name", "column_name", "total_bytes", "older_pct",
                                      "older_bytes", "method"])
    out.attrs.update(days=days, cutoff_epoch=cutoff)
    return out.sort_values(["older_bytes", "schema", "table_name"], ascending=[False, True, True],
                           ignore_index=True)
