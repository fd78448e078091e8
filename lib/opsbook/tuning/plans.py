"""Plans as engineers read them: the costliest nodes first, sequential scans on large tables, and the columns that
filters and joins compare (the raw material of candidate indexes)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

CONDITIONS = ("Filter", "Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond", "Join Filter")
_COMPARE = re.compile(r'(?:(?P<alias>\w+|"(?:[^"]|"")+")\.)?(?P<col>\w+|"(?:[^"]|"")+")\s*'
                      r"(?P<op>=|<>|<=|>=|<|>|IS NOT NULL|IS NULL)(?!\s*ANY)")
EQUALITY = ("=", "IS NULL")
RANGE = ("<", ">", "<=", ">=")
LARGE_ROWS = 10_000  # a sequential scan over fewer rows is usually the cheapest plan


@dataclass
class Node:
    kind: str
    relation: tuple[str, str] | None
    alias: str
    total_cost: float
    self_cost: float
    rows: float
    conditions: dict[str, str]


@dataclass
class Predicate:
    table: tuple[str, str]
    column: str
    kind: str  # eq | range | null (IS NULL: an equality a btree serves, rarely a selective one)


@dataclass
class Order:
    """A top-N sort (a Sort under a Limit) on plain columns of one table, all in one direction: an index in that
    order (read backwards for DESC) would return the first rows without sorting them all."""

    table: tuple[str, str]
    columns: tuple[str, ...]


_SORT_KEY = re.compile(r'^(?:(?P<alias>\w+|"(?:[^"]|"")+")\.)?(?P<col>\w+|"(?:[^"]|"")+")(?P<desc>\s+DESC)?$')
PASS_LIMIT = ("Limit", "Gather Merge", "Gather")  # a Sort below these still feeds the Limit in its order


@dataclass
class PlanSummary:
    total_cost: float
    nodes: list[Node] = field(default_factory=list)
    predicates: list[Predicate] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)

    def top(self, n: int = 3) -> list[Node]:
        return sorted(self.nodes, key=lambda x: -x.self_cost)[:n]

    def seq_scans(self, reltuples: dict[tuple[str, str], float], min_rows: float = LARGE_ROWS) -> list[Node]:
        return [x for x in self.nodes if x.kind == "Seq Scan" and x.relation
                and reltuples.get(x.relation, 0) >= min_rows]

    def text(self, n: int = 3) -> str:
        """The costliest nodes in one line each: what the plan spends its cost on."""
        lines = []
        for x in self.top(n):
            on = f" on {x.relation[0]}.{x.relation[1]}" if x.relation else ""
            cond = "; ".join(f"{k}: {v}" for k, v in x.conditions.items())
            lines.append(f"{x.kind}{on} (cost {x.self_cost:,.0f} of {self.total_cost:,.0f}, {x.rows:,.0f} rows)"
                         + (f" {cond}" if cond else ""))
        return "\n".join(lines)

    def uses(self, index_name: str) -> bool:
        return any(x.conditions.get("Index Name") == index_name for x in self.nodes)


def summarise(plan: dict, columns: dict[tuple[str, str], set[str]]) -> PlanSummary:
    """The plan's nodes with their own cost (total less their children's), and the compared columns of the
    tables in `columns` ((schema, table) -> column names)."""
    out = PlanSummary(float(plan.get("Total Cost", 0)))
    aliases: dict[str, tuple[str, str]] = {}
    raw: list[tuple[Node, dict]] = []
    top_n: list[tuple[Node, list[str]]] = []

    def walk(p: dict, under_limit: bool = False) -> None:
        kids = p.get("Plans", [])
        rel = (p["Schema"], p["Relation Name"]) if "Relation Name" in p and "Schema" in p else None
        if rel:
            aliases[p.get("Alias", rel[1])] = rel
        conds = {k: p[k] for k in CONDITIONS if k in p}
        if "Index Name" in p:
            conds["Index Name"] = p["Index Name"]
        if "Sort Key" in p:
            conds["Sort Key"] = ", ".join(p["Sort Key"])
        own = float(p.get("Total Cost", 0)) - sum(float(k.get("Total Cost", 0)) for k in kids)
        node = Node(p.get("Node Type", "?"), rel, p.get("Alias", ""), float(p.get("Total Cost", 0)),
                    max(own, 0.0), float(p.get("Plan Rows", 0)), conds)
        out.nodes.append(node)
        raw.append((node, p))
        if under_limit and node.kind in ("Sort", "Incremental Sort") and p.get("Sort Key"):
            top_n.append((node, list(p["Sort Key"])))
        for k in kids:
            walk(k, node.kind == "Limit" or (under_limit and node.kind in PASS_LIMIT))

    walk(plan)
    seen = set()
    for node, _ in raw:
        for key in ("Filter", "Hash Cond", "Merge Cond", "Join Filter", "Recheck Cond", "Index Cond"):
            text = node.conditions.get(key)
            if not text:
                continue
            for m in _COMPARE.finditer(text):
                alias = _unquote(m.group("alias")) if m.group("alias") else node.alias
                table = aliases.get(alias) or node.relation
                col = _unquote(m.group("col"))
                if table is None or col not in columns.get(table, set()):
                    continue
                op = m.group("op")
                kind = "null" if op == "IS NULL" else "eq" if op in EQUALITY else "range" if op in RANGE else ""
                if kind and (table, col, kind) not in seen:
                    seen.add((table, col, kind))
                    out.predicates.append(Predicate(table, col, kind))
    for _, keys in top_n:
        order = _order(keys, aliases, columns)
        if order is not None and order not in out.orders:
            out.orders.append(order)
    return out


def _order(keys: list[str], aliases: dict, columns: dict) -> Order | None:
    """The sort keys as columns of one table in one direction (default NULLS placement), else None."""
    tables, cols, directions = set(), [], set()
    for key in keys:
        m = _SORT_KEY.match(key.strip())
        if not m:
            return None  # an expression, a collation, NULLS FIRST/LAST against the direction
        alias = _unquote(m.group("alias")) if m.group("alias") else None
        table = aliases.get(alias) if alias else (next(iter(aliases.values())) if len(aliases) == 1 else None)
        col = _unquote(m.group("col"))
        if table is None or col not in columns.get(table, set()):
            return None
        tables.add(table)
        directions.add(bool(m.group("desc")))
        if col not in cols:
            cols.append(col)
    if len(tables) != 1 or len(directions) != 1:
        return None
    return Order(tables.pop(), tuple(cols))


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name
