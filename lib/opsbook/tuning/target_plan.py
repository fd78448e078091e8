"""The target's own generic plan of a statement, only where no code of the database's users can run while it is
planned.

The rule: a statement is planned on the target only after it planned on the shadow, which holds no user code (so
every function, operator, type and cast it resolves to is PostgreSQL's own), and only when
  - the target is PostgreSQL 16+ (EXPLAIN (GENERIC_PLAN); never EXPLAIN ANALYZE: nothing is executed),
  - no index, constraint or extended statistics of its tables depends on a function outside pg_catalog (the
    planner folds and evaluates those expressions: an IMMUTABLE user function there would run as opsbook),
  - the schemas put on the search path (to resolve its unqualified table names) hold no function, operator or type
    of their own (one there could win overload resolution over the built-in the shadow chose),
  - the statement calls no built-in function that runs SQL of its own (statement.RUNS_SQL: database_to_xml and its
    kin read views of the users; the planner evaluates a STABLE call with constant arguments while it estimates),
and it runs in opsbook's read-only transaction with row_security off (a policy's expression is never added: the
statement fails instead) and a short statement_timeout."""
from __future__ import annotations

import json
import time

from ..database.session import QueryTiming
from . import statement
from .shadow import ident

TIMEOUT_MS = 2_000
NO_PLAN_OLD = "no plan (PostgreSQL < 16)"


def refusal(db, tables: set[tuple[str, str]], info: dict, text: str) -> str | None:
    if db.server_version_num < 160000:
        return NO_PLAN_OLD
    why = statement.runs_sql(text)
    if why:
        return why
    t = info["tables"]
    oids = {int(r.oid) for r in t.itertuples() if (r.schema_name, r.table_name) in tables}
    code = info["table_code"]
    if len(code):
        mine = code[code["oid"].isin(oids)]
        if len(mine):
            return ("not planned on the target: an index, constraint or statistics object of its tables uses "
                    f"{', '.join(sorted(set(mine['code']))[:3])} (user code the planner would run)")
    sc = info["schema_code"]
    busy = sc[(sc["functions"] + sc["operators"] + sc["types"]) > 0] if len(sc) else sc
    busy = busy[busy["schema_name"].isin({s for s, _ in tables})] if len(busy) else busy
    if len(busy):
        return ("not planned on the target: schema " + ", ".join(busy["schema_name"]) + " holds functions, "
                "operators or types of its own, which could be chosen over PostgreSQL's in this statement")
    return None


def explain(db, text: str, schemas: list[str]) -> dict:
    """EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) in opsbook's read-only unit; the search path: pg_catalog first."""
    path = ", ".join(["pg_catalog"] + [ident(s) for s in schemas] + ["pg_temp"])
    t0 = time.perf_counter()
    with db.unit(statement_timeout_ms=TIMEOUT_MS):
        db.raw.execute(f"SET LOCAL search_path = {path}")
        db.raw.execute("SET LOCAL row_security = off")
        row = db.raw.execute("EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) " + text).fetchone()[0]
    db.timings.append(QueryTiming("tuning/explain", (time.perf_counter() - t0) * 1000, 1))
    plan = row if isinstance(row, list) else json.loads(row)
    return plan[0]["Plan"]
