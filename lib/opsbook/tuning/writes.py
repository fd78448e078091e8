"""What one more index costs a table's writes, in the planner's cost units, so that it can be netted from the
planned cost the index saves: every inserted row and non-HOT update writes an entry, an update that changes an
indexed column stops being HOT (and then writes an entry into every index of the table), and every dead entry
(deleted rows, non-HOT updates) is cleaned by VACUUM."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

MONTH_S = 30 * 86400
LOADED_SHARE = 0.5  # inserts counted in the window reaching half the table's rows: likely its initial load
# PostgreSQL's defaults, where the target's settings were not read
DEFAULT_COSTS = {"seq_page_cost": 1.0, "cpu_index_tuple_cost": 0.005, "cpu_operator_cost": 0.0025}

_UPDATE = re.compile(r'^\s*UPDATE\s+(?:ONLY\s+)?(?P<name>(?:"(?:[^"]|"")+"|\w+)(?:\.(?:"(?:[^"]|"")+"|\w+))?)'
                     r'(?:\s+(?:AS\s+)?(?!SET\b)\w+)?\s+SET\s+(?P<set>.*?)(?:\s(?:FROM|WHERE|RETURNING)\b|;|$)',
                     re.IGNORECASE | re.DOTALL)
_SET_COLUMN = re.compile(r'(?:^|,)\s*(?P<col>"(?:[^"]|"")+"|\w+)\s*=(?!=)')


@dataclass
class WriteCost:
    per_month: float  # planner cost units a month
    entries_per_month: float  # index entries written a month (this index, and the others' for lost HOT updates)
    text: str  # the figure and how it was estimated, for the report


def entry_cost(settings: dict, reltuples: float) -> float:
    """One index entry written, priced as the planner prices reading one: the btree descent's comparisons
    (cpu_operator_cost x log2(rows), as btcostestimate) and cpu_index_tuple_cost, plus one page dirtied and
    WAL-logged (seq_page_cost)."""
    c = {**DEFAULT_COSTS, **settings}
    return c["seq_page_cost"] + c["cpu_index_tuple_cost"] + c["cpu_operator_cost"] * math.log2(max(reltuples, 2))


def cleanup_cost(settings: dict) -> float:
    """One dead entry removed by VACUUM's index pass: one index tuple looked at and tested."""
    c = {**DEFAULT_COSTS, **settings}
    return c["cpu_index_tuple_cost"] + c["cpu_operator_cost"]


def updated_columns(texts: list[tuple[str, float]], schema: str, table: str) -> dict[str, float] | None:
    """Column -> calls of the visible UPDATE statements of schema.table that set it, with the key "" holding all
    their calls; None when no UPDATE of the table is among `texts` ((query, calls) pairs)."""
    out: dict[str, float] = {}
    for text, calls in texts:
        m = _UPDATE.match(text or "")
        if not m:
            continue
        parts = [_unquote(p) for p in re.findall(r'"(?:[^"]|"")+"|\w+', m.group("name"))]
        if parts[-1] != table or (len(parts) == 2 and parts[0] != schema):
            continue
        out[""] = out.get("", 0.0) + float(calls)
        for c in {_unquote(x.group("col")) for x in _SET_COLUMN.finditer(m.group("set"))}:
            out[c] = out.get(c, 0.0) + float(calls)
    return out or None


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


def estimate(t, columns: tuple[str, ...], *, indexes_now: int, settings: dict, window_s: float,
             updates: dict[str, float] | None, fraction: float = 1.0) -> WriteCost:
    """The write cost a month of an index on `columns` of table row `t` (pg_stat_user_tables' counts over
    `window_s` seconds); `fraction`: the share of rows a partial index holds; `updates`: updated_columns()."""
    months = max(window_s, 3600.0) / MONTH_S  # at least an hour: a just-reset window says nothing per month
    ins, upd, hot, dele = (float(t[k]) / months for k in ("n_tup_ins", "n_tup_upd", "n_tup_hot_upd", "n_tup_del"))
    if upd and hot and updates:
        share = sum(v for k, v in updates.items() if k in columns) / updates[""] if updates[""] else 0.0
        how = (f"the visible UPDATEs of the table set {', '.join(sorted(k for k in updates if k)) or 'nothing'}: "
               f"{share:.0%} of their calls change an indexed column, so that share of its HOT updates stop being HOT")
    elif upd and hot:
        share = 1.0
        how = ("no UPDATE of the table is among the statements read, so which columns updates change is not known: "
               "assumed the worst, that every HOT update changes an indexed column and stops being HOT")
    else:
        share, how = 0.0, "no HOT updates to lose"
    lost = hot * min(share, 1.0)
    own = (ins + (upd - hot) + lost) * fraction
    others = lost * indexes_now  # a non-HOT update writes every index of the table, not only the new one
    dead = (dele + (upd - hot) + lost) * fraction + others
    rows = float(t.get("reltuples", 0) or 0)
    per_month = (own + others) * entry_cost(settings, rows) + dead * cleanup_cost(settings)
    text = (f"write cost about {per_month:,.0f} a month: {ins:,.0f} inserts, {upd:,.0f} updates ({hot:,.0f} HOT), "
            f"{dele:,.0f} deletes a month (pg_stat_user_tables over {_span(window_s)}); "
            f"{own + others:,.0f} index entries written at {entry_cost(settings, rows):.2f} each; {how}")
    if rows and float(t["n_tup_ins"]) >= LOADED_SHARE * rows:
        text += ("; the counters' inserts are most of the table's rows: if it was loaded once in bulk, that load "
                 "counts as this window's writes and the cost is overstated (reset the table's counters after a "
                 "load: pg_stat_reset_single_table_counters)")
    return WriteCost(per_month, own + others, text)


def _span(seconds: float) -> str:
    if seconds < 3600:
        return "under an hour, taken as one"
    return f"{seconds / 3600:,.0f} hours" if seconds < 2 * 86400 else f"{seconds / 86400:,.0f} days"
