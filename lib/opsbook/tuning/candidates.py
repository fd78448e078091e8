"""Candidate indexes from the plans' compared columns, tried one by one on the shadow; the best kept, greedily."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .plans import PlanSummary, summarise

MAX_COLUMNS = 3
MAX_ORDER_COLUMNS = 4  # equality columns, then a top-N query's sort columns
NEAR_TIE = 1.02  # benefits within 2% are a tie: the smaller index wins it


@dataclass(frozen=True)
class Candidate:
    table: tuple[str, str]
    columns: tuple[str, ...]
    null_column: str | None = None  # a partial index: WHERE null_column IS NULL


@dataclass(frozen=True)
class Existing:
    """An index the table has, as far as judging a candidate covered goes: its key columns in order (None for an
    expression), and its predicate: `null_column` for WHERE col IS NULL, `other_predicate` for any other."""

    columns: tuple[str | None, ...]
    null_column: str | None = None
    other_predicate: bool = False


_IS_NULL = re.compile(r'^\(*(?P<col>\w+|"(?:[^"]|"")+")\s+IS\s+NULL\)*$')


def existing_index(ix) -> Existing:
    """A row of catalog.INDEXES as an Existing (its predicate read only when it is a plain `col IS NULL`)."""
    cols = getattr(ix, "key_columns", None)
    cols = list(ix.columns) if cols is None else list(cols)
    key = tuple(c if isinstance(c, str) else None for c in cols)
    pred = getattr(ix, "predicate", None)
    if not isinstance(pred, str) or not pred:
        return Existing(key)
    m = _IS_NULL.match(pred.strip())
    if m:
        col = m.group("col")
        return Existing(key, col[1:-1].replace('""', '"') if col.startswith('"') else col)
    return Existing(key, other_predicate=True)


def covered(cand: Candidate, existing: list) -> bool:
    """An existing index serves the candidate: it starts with the candidate's columns and has no predicate (a
    partial candidate: or the same IS NULL predicate); a plain list of columns is an index without predicate."""
    for e in existing:
        e = e if isinstance(e, Existing) else Existing(tuple(e))
        if list(e.columns[:len(cand.columns)]) != list(cand.columns):
            continue
        if cand.null_column:
            if e.null_column == cand.null_column and not e.other_predicate:
                return True
        elif e.null_column is None and not e.other_predicate:
            return True
    return False


@dataclass
class Proposal:
    candidate: Candidate
    pages: int
    benefit: float  # planned cost saved, summed over the statements' calls
    helped: list[tuple[str, float, float]] = field(default_factory=list)  # (queryid, cost before, cost after)
    write_cost: float = 0.0  # the added write cost over the same window, in the same units (writes.estimate)

    @property
    def net(self) -> float:
        return self.benefit - self.write_cost


def propose(summaries: dict[str, PlanSummary], reltuples: dict, existing: dict, min_rows: float,
            distinct: dict | None = None) -> list[Candidate]:
    """Per statement and large table: an index on each compared column, and one on all of them (equality columns
    first, the most distinct first (`distinct`: (table, column) -> distinct values), then IS NULL columns, then one
    range column), unless an existing index already starts with those columns; for a top-N sort (ORDER BY ...
    LIMIT), one on the sort's columns and one on the equality columns followed by them."""
    distinct = distinct or {}
    out: list[Candidate] = []
    for summary in summaries.values():
        by_table: dict[tuple[str, str], list] = {}
        for p in summary.predicates:
            if reltuples.get(p.table, 0) >= min_rows:
                by_table.setdefault(p.table, []).append(p)
        for table, preds in by_table.items():
            eq = sorted(dict.fromkeys(p.column for p in preds if p.kind == "eq"),
                        key=lambda c: -distinct.get((table, c), 0))
            eq += [p.column for p in preds if p.kind == "null" and p.column not in eq]
            rng = [p.column for p in preds if p.kind == "range" and p.column not in eq]
            shapes = [(c,) for c in dict.fromkeys(eq + rng)]
            combined = tuple(dict.fromkeys(eq))[:MAX_COLUMNS - 1] + tuple(rng[:1])
            if len(combined) > 1:
                shapes.append(combined)
            found = [Candidate(table, cols) for cols in shapes]
            nulls = [p.column for p in preds if p.kind == "null"]
            rest = tuple(c for c in combined if c != (nulls[0] if nulls else None))
            if nulls and rest:  # rows waiting for something (read_at IS NULL) are usually few: index only those
                found.append(Candidate(table, rest, nulls[0]))
            for c in found:
                if c not in out and not covered(c, existing.get(table, [])):
                    out.append(c)
        for order in summary.orders:  # ORDER BY ... LIMIT: the equality columns, then the sort's, in its order
            if reltuples.get(order.table, 0) < min_rows:
                continue
            preds = by_table.get(order.table, [])
            eq = sorted(dict.fromkeys(p.column for p in preds if p.kind == "eq"),
                        key=lambda c: -distinct.get((order.table, c), 0))[:MAX_COLUMNS - 1]
            shapes = {order.columns[:MAX_ORDER_COLUMNS],
                      (tuple(eq) + tuple(c for c in order.columns if c not in eq))[:MAX_ORDER_COLUMNS]}
            for cols in sorted(shapes, key=len):
                c = Candidate(order.table, cols)
                if c not in out and not covered(c, existing.get(order.table, [])):
                    out.append(c)
    return out


def evaluate(shadow, candidates: list[Candidate], planned: dict[str, dict], columns: dict, *,
             max_indexes: int, min_gain_pct: float, write_cost=None, rejected: list | None = None) -> list[Proposal]:
    """Greedy: each round tries every remaining candidate against the statements that read its table, keeps the
    one that saves most planned cost weighted by calls (only where the plan uses it and the statement gets at least
    `min_gain_pct` cheaper) net of `write_cost(candidate)` (same units), and plans the next round with it in place.
    A candidate that helps but costs more in writes than it saves goes to `rejected` (its latest trial)."""
    baseline = {q: p["summary"].total_cost for q, p in planned.items()}
    remaining, kept = list(candidates), []
    losers: dict[Candidate, Proposal] = {}
    for n in range(max_indexes):
        best: Proposal | None = None
        for cand in list(remaining):
            try:
                trial = _try(shadow, cand, planned, columns, baseline, min_gain_pct)
            except Exception as e:  # noqa: BLE001 - the shadow refused this index: said, the others go on
                remaining.remove(cand)
                shadow.trial_errors.append(f"{'.'.join(cand.table)} ({', '.join(cand.columns)}): "
                                           + " ".join(str(e).split())[:200])
                continue
            trial.write_cost = float(write_cost(cand)) if write_cost and trial.helped else 0.0
            if trial.helped and trial.net <= 0:
                losers[cand] = trial
                continue
            losers.pop(cand, None)
            if trial.helped and (best is None or trial.net > best.net * NEAR_TIE
                                 or (trial.net >= best.net / NEAR_TIE and trial.pages < best.pages)):
                best = trial
        if best is None:
            break
        name = shadow.free_name(best.candidate.table[0], f"opsbook_proposal_{n + 1}")
        with shadow.with_index(*best.candidate.table, list(best.candidate.columns), name=name, keep=True,
                               null_column=best.candidate.null_column):
            pass
        for qid, _, after in best.helped:
            baseline[qid] = after
        kept.append(best)
        remaining.remove(best.candidate)
    if rejected is not None:  # said only for statements no kept index helps: the others got their index
        served = {q for k in kept for q, _, _ in k.helped}
        rejected += [t for t in losers.values() if not {q for q, _, _ in t.helped} & served]
    return kept


def _try(shadow, cand: Candidate, planned: dict, columns: dict, baseline: dict, min_gain_pct: float) -> Proposal:
    result = Proposal(cand, 0, 0.0)
    affected = [q for q, p in planned.items() if any(x.relation == cand.table for x in p["summary"].nodes)]
    with shadow.with_index(*cand.table, list(cand.columns), null_column=cand.null_column) as (name, pages):
        result.pages = pages
        for qid in affected:
            after = summarise(shadow.explain(planned[qid]["text"]), columns)
            before = baseline[qid]
            if after.uses(name) and after.total_cost <= before * (1 - min_gain_pct / 100):
                result.helped.append((qid, before, after.total_cost))
                result.benefit += planned[qid]["calls"] * (before - after.total_cost)
    return result
