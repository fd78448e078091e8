"""Where the target has the hypopg extension: what a hypopg-based advisor (in the style of Dexter and Supabase's
index_advisor) proposes for the same statements, and both proposal sets costed on the target with hypothetical
indexes.

Why this is safe on production:
  - Planning only, nothing executed: EXPLAIN (GENERIC_PLAN) on PostgreSQL 16+; on 13-15 a uniquely named PREPARE
    with plan_cache_mode = force_generic_plan and EXPLAIN EXECUTE with NULL parameters (never EXPLAIN ANALYZE),
    then DEALLOCATE of that name only (never DEALLOCATE ALL: through a pooler it would drop the application's
    statements). Each EXPLAIN sits in a SAVEPOINT, so a failed one still deallocates.
  - hypopg's indexes are not indexes: they live in this backend's memory, are seen only by EXPLAIN (not by an
    executed statement, nor by any other session), and hypopg_reset() drops them before opsbook's unit ends (also
    on error), so a pooled server connection goes back clean.
  - Only statements opsbook already planned on the shadow (which holds no user code) are planned, under
    target_plan's rule (no user function in their tables' indexes, constraints or statistics; no function,
    operator or type of a user in the schemas on the path), in opsbook's read-only transaction with
    row_security off and a short statement_timeout.
  - The two functions called are verified members of extension hypopg (pg_depend, deptype 'e') and are called by
    their schema with exact argument types: a same-named function a user made elsewhere is never chosen, and
    without the extension nothing is called at all."""
from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field

from ..database.session import SEARCH_PATH, QueryTiming
from . import statement, target_plan
from .candidates import Candidate
from .plans import summarise
from .shadow import ident, qualified

TIMEOUT_MS = 2_000
EQUAL_PCT = 0.5  # totals within this share of each other are equal
MAX_COLUMNS = 3
# the extension's functions opsbook calls: name -> argument types (pg_catalog)
FUNCTIONS = {"hypopg_create_index": ("text",), "hypopg_reset": ()}
MEMBERS = """
SELECT p.proname::text AS name, n.nspname::text AS schema_name,
       pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.format_type(t, NULL)
                                        FROM pg_catalog.unnest(p.proargtypes::pg_catalog.oid[]) t), ',') AS args
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.refobjid = e.oid
     AND d.deptype = 'e' AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
JOIN pg_catalog.pg_proc p ON p.oid = d.objid
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE e.extname = 'hypopg' AND p.proname IN ('hypopg_create_index', 'hypopg_reset')"""
_Q = r'"(?:[^"]|"")+"'
# a proposal's first statement (a partitioned table's: the index ON ONLY the parent)
_CREATE = re.compile(rf'^CREATE INDEX (?:CONCURRENTLY )?{_Q} ON (?:ONLY )?(?P<schema>{_Q})\.(?P<table>{_Q}) '
                     rf'\((?P<cols>{_Q}(?:, {_Q})*)\)(?: WHERE (?P<null>{_Q}) IS NULL)?;')
_IDENT = re.compile(r'"((?:[^"]|"")+)"')


@dataclass
class SetCost:
    indexes: list[str]  # CREATE INDEX definitions
    read_cost: float  # the statements' planned cost with these indexes, weighted by calls
    write_cost: float  # the indexes' write cost over the same window (opsbook.tuning.writes), same units

    @property
    def total(self) -> float:
        return self.read_cost + self.write_cost


@dataclass
class Compare:
    hypopg: SetCost
    opsbook: SetCost
    baseline: float  # the statements' weighted planned cost without either set
    statements: int  # statements costed on the target
    verdict: str  # equal | better | worse (opsbook's set, by total)
    by: float  # hypopg's total less opsbook's (positive: opsbook's saves more)
    by_pct: float  # `by` as a share of hypopg's total
    notes: list[str] = field(default_factory=list)

    def table(self):
        import pandas as pd

        return pd.DataFrame([{"advisor": name, "indexes": "; ".join(s.indexes) or "(none)",
                              "read_cost": round(s.read_cost, 1), "write_cost": round(s.write_cost, 1),
                              "total": round(s.total, 1), "saved_vs_none": round(self.baseline - s.read_cost, 1)}
                             for name, s in (("opsbook", self.opsbook), ("hypopg", self.hypopg))])


def members(db) -> dict[str, str] | None:
    """{function name: its schema} when the target's hypopg extension owns both functions opsbook calls, with
    exactly the argument types it passes; None without the extension (nothing else is called then)."""
    t0 = time.perf_counter()
    with db.unit(statement_timeout_ms=TIMEOUT_MS):
        rows = db.raw.execute(MEMBERS).fetchall()
    db.timings.append(QueryTiming("tuning/hypopg_members", (time.perf_counter() - t0) * 1000, len(rows)))
    found = {name: schema for name, schema, args in rows if tuple(filter(None, args.split(","))) == FUNCTIONS[name]}
    return found if set(found) == set(FUNCTIONS) else None


def compare(db, rows: list[dict], proposals, info: dict, write_cost, notes: list[str]) -> Compare | None:
    """The comparison, or None when the target has no hypopg; any error becomes a line in `notes`, never a crash.
    `rows`: the tuning run's statements (planned on the shadow where shadow_cost is set); `proposals`: its
    indexes (create_sql); `write_cost(Candidate)`: an index's write cost over the counters' window."""
    try:
        where = members(db)
        if where is None:
            return None
        return _compare(db, where, rows, proposals, info, write_cost)
    except Exception as e:  # noqa: BLE001 - the comparison is an extra: said, never fatal
        notes.append("hypopg comparison not made: " + " ".join(str(e).split())[:300])
        return None


def _compare(db, where: dict, rows: list[dict], proposals, info: dict, write_cost) -> Compare:
    tables = info["tables"]
    cols = info["columns"]
    columns = {(r.schema_name, r.table_name): set(cols[cols["oid"] == r.oid]["column_name"])
               for r in tables.itertuples()}
    todo, notes = [], []
    for r in rows:
        if r.get("status") or r.get("shadow_cost") is None:
            continue
        words = statement.names(r["query"])
        named = {key for key in columns if key[1] in words}  # every table the text could name: a superset
        why = target_plan.refusal(_AnyVersion(), named, info, r.get("plan_text") or r["query"])
        if why:
            notes.append(f"queryid {r['queryid']}: {why}")
            continue
        todo.append({"qid": r["queryid"], "text": r.get("plan_text") or r["query"], "calls": float(r["calls"]),
                     "schemas": sorted({s for s, _ in named})})
    sqls = list(proposals["create_sql"]) if len(proposals) else []
    ours = [c for c in map(parse_create, sqls) if c]
    notes += [f"opsbook's proposal not costed (not a plain index): {x[:120]}" for x in sqls if not parse_create(x)]
    if not todo:  # nothing may be planned here: nothing is called
        none = SetCost([], 0.0, 0.0)
        return Compare(none, none, 0.0, 0, "equal", 0.0, 0.0, notes)
    conn, t0 = db.raw, time.perf_counter()
    with db.unit(statement_timeout_ms=TIMEOUT_MS):
        conn.execute("SET LOCAL row_security = off")
        conn.execute("SAVEPOINT opsbook_hypopg")
        try:
            base = {}
            for s in todo:
                try:
                    base[s["qid"]] = summarise(_plan(db, s), columns)
                except Exception as e:  # noqa: BLE001 - a timeout, a policy: this statement is left out
                    notes.append(f"queryid {s['qid']} not planned on the target: {' '.join(str(e).split())[:200]}")
            todo = [s for s in todo if s["qid"] in base]
            theirs: list[Candidate] = []
            for s in todo:  # the hypopg advisor: per statement, what its cheapest plan uses of all the candidates
                made = {}
                for c in _shapes(base[s["qid"]]):
                    made[_create(conn, where, c)] = c
                used = summarise(_plan(db, s), columns)
                theirs += [c for name, c in made.items() if used.uses(name) and c not in theirs]
                _reset(conn, where)
            costs = {}
            for label, chosen in (("hypopg", theirs), ("opsbook", ours)):
                for c in chosen:
                    _create(conn, where, c)
                read = sum(s["calls"] * summarise(_plan(db, s), columns).total_cost for s in todo)
                _reset(conn, where)
                costs[label] = SetCost([definition(c) for c in chosen], read, sum(write_cost(c) for c in chosen))
        finally:
            _clean(conn, where)
    db.timings.append(QueryTiming("tuning/hypopg", (time.perf_counter() - t0) * 1000, len(todo)))  # the whole unit
    baseline = sum(s["calls"] * base[s["qid"]].total_cost for s in todo)
    h, o = costs["hypopg"], costs["opsbook"]
    by = h.total - o.total
    pct = 100.0 * by / h.total if h.total else 0.0
    verdict = "equal" if abs(pct) < EQUAL_PCT else "better" if by > 0 else "worse"
    return Compare(h, o, baseline, len(todo), verdict, by, pct, notes)


class _AnyVersion:
    """target_plan.refusal's rules without its version test: here a PREPAREd generic plan stands in for
    EXPLAIN (GENERIC_PLAN) on PostgreSQL 13-15."""

    server_version_num = 160000


def _shapes(summary) -> list[Candidate]:
    """Dexter's and index_advisor's candidates: each compared column alone, and all of one table's together
    (equalities first)."""
    out: list[Candidate] = []
    by_table: dict = {}
    for p in summary.predicates:
        by_table.setdefault(p.table, []).append(p)
    for table, preds in by_table.items():
        names = list(dict.fromkeys([p.column for p in preds if p.kind != "range"]
                                   + [p.column for p in preds if p.kind == "range"]))
        out += [Candidate(table, (c,)) for c in names]
        if len(names) > 1:
            out.append(Candidate(table, tuple(names[:MAX_COLUMNS])))
    return out


def parse_create(sql: str) -> Candidate | None:
    """A proposal's CREATE INDEX CONCURRENTLY statement (advisor._proposal_row's form) as a Candidate."""
    m = _CREATE.match(sql.strip())
    if not m:
        return None
    un = lambda q: q[1:-1].replace('""', '"')
    cols = tuple(x.replace('""', '"') for x in _IDENT.findall(m.group("cols")))
    return Candidate((un(m.group("schema")), un(m.group("table"))), cols, un(m.group("null")) if m.group("null")
                     else None)


def definition(c: Candidate) -> str:
    return (f"CREATE INDEX ON {qualified(*c.table)} ({', '.join(ident(x) for x in c.columns)})"
            + (f" WHERE {ident(c.null_column)} IS NULL" if c.null_column else ""))


def _create(conn, where: dict, c: Candidate) -> str:
    """A hypothetical index (backend memory only); its name as plans show it."""
    fn = f"{ident(where['hypopg_create_index'])}.hypopg_create_index"
    return conn.execute(f"SELECT indexname FROM {fn}(%s::pg_catalog.text)", (definition(c),)).fetchone()[0]


def _reset(conn, where: dict) -> None:
    conn.execute(f"SELECT {ident(where['hypopg_reset'])}.hypopg_reset()")


def _clean(conn, where: dict) -> None:
    """hypopg_reset() before the unit ends, also after an error: back to the unit's first savepoint when the error
    left the transaction unusable (hypopg's memory outlives a rollback)."""
    from psycopg import pq

    if conn.info.transaction_status == pq.TransactionStatus.INERROR:
        conn.execute("ROLLBACK TO SAVEPOINT opsbook_hypopg")
    conn.execute(f"SET LOCAL search_path = {SEARCH_PATH}")
    _reset(conn, where)


def _plan(db, s: dict) -> dict:
    return generic_plan(db.raw, s["text"], db.server_version_num, s["schemas"])


def generic_plan(conn, text: str, version_num: int, schemas: list[str]) -> dict:
    """The generic plan's top node of `text` (parameters $1...), inside the caller's transaction on `conn`, with
    the search path pg_catalog, `schemas`, pg_temp for its length only. PostgreSQL 16+: EXPLAIN (GENERIC_PLAN);
    13-15: a uniquely named PREPARE, EXPLAIN EXECUTE with NULLs under force_generic_plan, DEALLOCATE of that name.
    In a SAVEPOINT: an error rolls back to it (and still deallocates) before it is raised."""
    path = ", ".join(["pg_catalog"] + [ident(s) for s in schemas] + ["pg_temp"])
    prepared = None
    conn.execute("SAVEPOINT opsbook_plan")
    try:
        conn.execute(f"SET LOCAL search_path = {path}")
        if version_num >= 160000:
            row = conn.execute("EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) " + text).fetchone()[0]
        else:
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            name = "opsbook_plan_" + uuid.uuid4().hex
            conn.execute(f"PREPARE {name} AS {text}")
            prepared = name
            types = conn.execute("SELECT parameter_types FROM pg_catalog.pg_prepared_statements WHERE name = %s",
                                 (name,)).fetchone()[0]
            args = f"({', '.join('NULL' for _ in types)})" if types else ""
            row = conn.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE {name}{args}").fetchone()[0]
        conn.execute("RELEASE SAVEPOINT opsbook_plan")
        conn.execute(f"SET LOCAL search_path = {SEARCH_PATH}")
    except BaseException:
        conn.execute("ROLLBACK TO SAVEPOINT opsbook_plan")  # the path and plan_cache_mode with it
        conn.execute("RELEASE SAVEPOINT opsbook_plan")
        raise
    finally:
        if prepared:
            conn.execute(f"DEALLOCATE {prepared}")
    plan = row if isinstance(row, list) else json.loads(row)
    return plan[0]["Plan"]
