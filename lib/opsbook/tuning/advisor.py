"""One tuning run: the costliest statements, their plans on the target and on the shadow, and proven indexes."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..core.errors import OpsbookError, SkipCheck
from . import catalog, hypopg, logplans, partitions, reasons, statement, target_plan, writes
from .candidates import evaluate, existing_index, propose
from .plans import LARGE_ROWS, summarise
from .names import fit
from .shadow import ident, open_shadow

# pg_stat_statements' columns as checks.queries.statements gives them (a run on the log alone has the same rows)
STATEMENT_COLUMNS = ["queryid", "calls", "total_exec_ms", "mean_exec_ms", "max_exec_ms", "pct_total_time", "rows",
                     "shared_blks_hit", "shared_blks_read", "temp_blks_written", "io_read_ms", "hidden", "query"]
DEFAULTS = {"top_statements": 20, "max_indexes": 5, "min_gain_pct": 10.0, "min_rows": LARGE_ROWS}


@dataclass
class Tuning:
    statements: object  # DataFrame: one row per statement looked at
    indexes: object  # DataFrame: the proposals, best first
    unhelped: object  # DataFrame: planned statements no index helped, and why
    skipped: str | None = None  # why nothing could be looked at (no pg_stat_statements, ...)
    hidden: int = 0  # statements whose text this role could not see
    own_excluded: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    shadow_gone: bool | None = None
    shadow_error: str | None = None
    notes: list[str] = field(default_factory=list)
    rejected: object = None  # DataFrame: indexes that helped but cost more in writes than they save
    compare: object = None  # hypopg.Compare: hypopg-based proposals against these, where the target has hypopg
    from_log: object = None  # DataFrame: the server log's statements and plans (None: no log given)
    log: object = None  # logplans.LogPlans: what the log held and what could not be read


def tune(db, params: dict | None = None) -> Tuning:
    import pandas as pd

    from ..checks.queries import statements as top_statements
    from ..checks.registry import CheckContext

    p = {**DEFAULTS, **{k: v for k, v in (params or {}).items() if v is not None}}
    t0, first_timing = time.perf_counter(), len(db.timings)
    empty = pd.DataFrame()
    log = logplans.from_params(db, p)  # params log_path, log_line_prefix: the server log's plans
    try:
        df = top_statements(CheckContext(db=db, target=None, params={}), int(p["top_statements"]))
    except SkipCheck as e:
        if log is None or log.error is not None or not log.statements:
            return Tuning(empty, empty, empty, skipped=str(e), log=log,
                          from_log=logplans.attach(log, [], None) if log is not None else None)
        df, without_pgss = pd.DataFrame(columns=STATEMENT_COLUMNS), str(e)  # the log's statements only
    else:
        without_pgss = None
    if len(df):
        df = df[~df["query"].map(statement.session_chatter)].reset_index(drop=True)
    hidden = int(df["hidden"].astype(bool).sum()) if len(df) else 0
    df = df[~df["hidden"].astype(bool)].reset_index(drop=True) if len(df) else df
    out = Tuning(df, empty, empty, hidden=hidden, own_excluded=int(df.attrs.get("own_excluded", 0)))
    if without_pgss:
        out.notes.append(f"only the server log's statements: {without_pgss}")
    rows = df.to_dict("records")
    if log is not None and log.error is None:  # what only the log saw is tuned too
        rows += logplans.log_only_rows(log, rows, list(df.columns), int(p["top_statements"]))
    for r in rows:
        r["status"] = statement.refusal(r["query"]) or ""
        r["plan_text"] = statement.plannable(r["query"])  # typed literals kept as `interval $4` made to parse
        r.update(target_plan="", shadow_cost=None, plan="")
    plannable = [r for r in rows if not r["status"]]
    names = set().union(*(statement.names(r["query"]) for r in plannable)) if plannable else set()
    info = catalog.read(db, names) if names else None
    if info is not None and len(info["tables"]):
        info["updates"] = [(r["query"], float(r["calls"])) for r in rows]  # UPDATE texts: which columns change
        try:
            _with_shadow(db, out, rows, info, p)
        except (OpsbookError, OSError) as e:  # no server binaries, no disk, a file the account may not write
            out.shadow_error = f"the shadow cluster could not be built: {' '.join(str(e).split())[:300]}"
            for r in rows:
                if not r["status"] and r["shadow_cost"] is None:
                    r["status"] = "not planned: " + out.shadow_error
        else:  # where the target has hypopg: its advisor's proposals against these (None without it)
            out.compare = hypopg.compare(db, rows, out.indexes, info, _window_write_cost(info), out.notes)
    else:
        for r in plannable:
            r["status"] = "names no user table opsbook could read"
    if log is not None:  # the log's plan where the target gave none (PostgreSQL < 16), and its own statements
        out.log, out.from_log = log, logplans.attach(log, rows, info)
    out.statements = pd.DataFrame(rows, columns=list(df.columns) + ["status", "target_plan", "shadow_cost", "plan",
                                                                    "source"])
    out.timings["run_s"] = time.perf_counter() - t0
    out.timings["target_server_ms"] = sum(t.duration_ms for t in db.timings[first_timing:])
    return out


def _with_shadow(db, out: Tuning, rows: list[dict], info: dict, p: dict) -> None:
    import pandas as pd

    tables = info["tables"]
    reltuples = {(r.schema_name, r.table_name): float(r.reltuples) for r in tables.itertuples()}
    never = {(r.schema_name, r.table_name) for r in tables.itertuples() if r.never_analyzed or r.reltuples < 0}
    cols = info["columns"]
    columns = {(r.schema_name, r.table_name): set(cols[cols["oid"] == r.oid]["column_name"])
               for r in tables.itertuples()}
    existing: dict = {}
    for ix in info["indexes"].itertuples():
        key = next(((r.schema_name, r.table_name) for r in tables.itertuples() if r.oid == ix.oid), None)
        existing.setdefault(key, []).append(existing_index(ix))  # partial and expression ones as they are
    t0 = time.perf_counter()
    with open_shadow(info) as shadow:
        out.timings["shadow_build_s"] = time.perf_counter() - t0
        planned = {}
        for r in rows:
            if r["status"]:
                continue
            try:
                s = summarise(shadow.explain(r["plan_text"]), columns)
            except Exception as e:  # noqa: BLE001 - the server's refusal is the answer: say it
                r["status"] = "not planned: " + _why_not(str(e))
                continue
            used = {x.relation for x in s.nodes if x.relation} & set(shadow.copied)
            if not used:
                r["status"] = "reads no user table"
                continue
            r["shadow_cost"], r["plan"] = s.total_cost, s.text()
            planned[r["queryid"]] = {"text": r["plan_text"], "calls": float(r["calls"]), "summary": s}
            why = target_plan.refusal(db, used, info, r["plan_text"])
            if why:
                r["target_plan"] = why
                continue
            try:
                ts = summarise(target_plan.explain(db, r["plan_text"], sorted({sc for sc, _ in used})), columns)
                r["target_plan"] = f"cost {ts.total_cost:,.0f}: " + ts.text(2)
            except Exception as e:  # noqa: BLE001 - a timeout, a policy (row_security off): said, not fatal
                r["target_plan"] = "not planned on the target: " + _why_not(str(e))
        blind = {tuple(t.split(".", 1)) for t in shadow.no_stats}  # default selectivities prove nothing
        cands = [c for c in propose({q: v["summary"] for q, v in planned.items()}, reltuples, existing,
                                    float(p["min_rows"]), _distinct(info, reltuples)) if c.table not in blind]
        t1 = time.perf_counter()
        costs, months = _write_costs(info), _months(info)
        losers: list = []
        kept = evaluate(shadow, cands, planned, columns, max_indexes=int(p["max_indexes"]),
                        min_gain_pct=float(p["min_gain_pct"]), write_cost=lambda c: costs(c).per_month * months,
                        rejected=losers)
        out.timings["candidates_s"] = time.perf_counter() - t1
        out.timings["candidates_tried"] = len(cands)
        out.notes += [f"{s}.{t} not in the shadow: {why}" for (s, t), why in shadow.not_copied.items()]
        out.notes += [f"{t}: column statistics not readable by this role (SELECT on the table needed)"
                      for t in shadow.no_stats]
        out.notes += [f"candidate index not tried, the shadow refused it: {e}" for e in shadow.trial_errors[:10]]
        if shadow.indexes_skipped:
            out.notes.append("indexes not copied to the shadow (code that is not PostgreSQL's own, or not valid): "
                             + ", ".join(shadow.indexes_skipped[:10]))
        cluster = shadow.cluster
    out.shadow_gone = not cluster.directory.exists()
    names = info.get("relation_names")
    taken = set(zip(names["schema_name"], names["name"])) if names is not None and len(names) else set()
    droppable: dict = {}  # plain, non-unique indexes: a longer one starting with their columns serves their scans
    for ix in info["indexes"].itertuples():
        key = next(((r.schema_name, r.table_name) for r in tables.itertuples() if r.oid == ix.oid), None)
        if ix.simple and not ix.is_unique:
            droppable.setdefault(key, []).append((ix.index_name, list(ix.columns)))
    rows_out = []
    for i, k in enumerate(kept):
        row = _proposal_row(i + 1, k, tables, droppable, taken)
        before = sum(planned[q]["calls"] * b for q, b, _ in k.helped)
        row.update(saving_pct=round(100.0 * k.benefit / before, 1) if before else None,
                   benefit_per_month=round(k.benefit / months, 1), write_cost_per_month=round(k.write_cost / months, 1),
                   net_per_month=round(k.net / months, 1),
                   write_note=costs(k.candidate).text + "; " + row["write_note"])
        rows_out.append(row)
    out.indexes = pd.DataFrame(rows_out, columns=["rank", "create_sql", "table", "columns", "benefit", "helps",
                                                  "est_size_bytes", "write_note", "makes_redundant", "saving_pct",
                                                  "benefit_per_month", "write_cost_per_month", "net_per_month"])
    best_loss: dict = {}
    for k in losers:  # per statement set, the loser that would have saved most
        key = frozenset(q for q, _, _ in k.helped)
        if key not in best_loss or k.benefit > best_loss[key].benefit:
            best_loss[key] = k
    out.rejected = pd.DataFrame(
        [{"table": ".".join(k.candidate.table), "columns": ", ".join(k.candidate.columns)
          + (f" where {k.candidate.null_column} is null" if k.candidate.null_column else ""),
          "benefit_per_month": round(k.benefit / months, 1), "write_cost_per_month": round(k.write_cost / months, 1),
          "net_per_month": round(k.net / months, 1),
          "helps": "; ".join(f"queryid {q}: cost {b:,.0f} -> {a:,.0f}" for q, b, a in k.helped),
          "write_note": costs(k.candidate).text} for k in best_loss.values()],
        columns=["table", "columns", "benefit_per_month", "write_cost_per_month", "net_per_month", "helps",
                 "write_note"])
    helped = {q for k in [*kept, *best_loss.values()] for q, _, _ in k.helped}
    out.unhelped = pd.DataFrame(
        [{"queryid": q, "calls": v["calls"], "shadow_cost": v["summary"].total_cost,
          "why": reasons.why_no_index(v["summary"], reltuples, never, float(p["min_gain_pct"])),
          "query": v["text"][:300]} for q, v in planned.items() if q not in helped],
        columns=["queryid", "calls", "shadow_cost", "why", "query"])


def _window_write_cost(info: dict):
    """candidate -> its write cost over the counters' window, in the planner's units (as evaluate nets it)."""
    costs, months = _write_costs(info), _months(info)
    return lambda c: costs(c).per_month * months


def _months(info: dict) -> float:
    """The table counters' window in months (the statements' calls are taken as counted over the same window:
    pg_stat_statements and pg_stat_user_tables are usually reset together, or never)."""
    w = info.get("window")
    window_s = float(w["window_s"].iloc[0]) if w is not None and len(w) and w["window_s"].iloc[0] == \
        w["window_s"].iloc[0] else writes.MONTH_S
    return max(window_s, 3600.0) / writes.MONTH_S


def _write_costs(info: dict):
    """candidate -> writes.WriteCost, from its table's counters, its index count and the visible UPDATE texts."""
    tables = info["tables"]
    settings = {}
    for s in info["settings"].itertuples():
        try:
            settings[s.name] = float(s.setting)
        except (TypeError, ValueError):
            pass
    window_s = _months(info) * writes.MONTH_S
    stats = info["stats"]

    def cost(c):
        schema, table = c.table
        t = tables[(tables["schema_name"] == schema) & (tables["table_name"] == table)].iloc[0]
        fraction = 1.0
        if c.null_column and len(stats):
            s = stats[(stats["schema_name"] == schema) & (stats["table_name"] == table)
                      & (stats["column_name"] == c.null_column)]
            fraction = float(s["null_frac"].iloc[0]) if len(s) else 1.0
        n = int((info["indexes"]["oid"] == t["oid"]).sum()) if len(info["indexes"]) else 0
        return writes.estimate(t, tuple(c.columns) + ((c.null_column,) if c.null_column else ()), indexes_now=n,
                               settings=settings, window_s=window_s,
                               updates=writes.updated_columns(info.get("updates", []), schema, table),
                               fraction=fraction)
    return cost


def _distinct(info: dict, reltuples: dict) -> dict:
    """(table, column) -> estimated distinct values (pg_stats' n_distinct: negative is a fraction of the rows)."""
    out = {}
    for s in info["stats"].itertuples() if len(info["stats"]) else []:
        key = (s.schema_name, s.table_name)
        nd = float(s.n_distinct)
        out[(key, s.column_name)] = -nd * max(reltuples.get(key, 0), 0) if nd < 0 else nd
    return out


def _proposal_row(rank: int, k, tables, droppable: dict, taken: set) -> dict:
    (schema, table), cols, null = k.candidate.table, k.candidate.columns, k.candidate.null_column
    stem = "_".join([table, *cols] + ([null, "null"] if null else []))
    name = fit(stem, "_idx")  # as the server will keep it: 63 bytes
    n = 1
    while (schema, name) in taken:  # relation names are unique per schema: never propose one that exists
        n += 1
        name = fit(stem, f"_idx{n}")
    taken.add((schema, name))
    t = tables[(tables["schema_name"] == schema) & (tables["table_name"] == table)].iloc[0]
    return {"rank": rank,
            "create_sql": partitions.create_index_sql(tables, schema, table, name,
                                                      f"({', '.join(ident(c) for c in cols)})"
                                                      + (f" WHERE {ident(null)} IS NULL" if null else ""), ident),
            "table": f"{schema}.{table}", "columns": ", ".join(cols) + (f" where {null} is null" if null else ""),
            "benefit": round(k.benefit, 1),
            "helps": "; ".join(f"queryid {q}: cost {b:,.0f} -> {a:,.0f}" for q, b, a in k.helped),
            "est_size_bytes": int(k.pages) * 8192, "write_note": write_note(t),
            "makes_redundant": ", ".join(f"{schema}.{n} ({', '.join(e)})" for n, e in droppable.get((schema, table), [])
                                         if not null and len(e) < len(cols) and list(cols[:len(e)]) == list(e))}


HEAVY_UPDATE_SHARE = 0.5  # updates at least half of the table's row writes


def write_note(t) -> str:
    """What one more index costs this table's writes: every insert and non-HOT update maintains it, and an update
    that changes an indexed column can no longer be HOT."""
    writes = int(t["n_tup_ins"] + t["n_tup_upd"] + t["n_tup_del"])
    if not writes:
        return "no writes counted since the statistics reset"
    upd = int(t["n_tup_upd"])
    hot = 100.0 * int(t["n_tup_hot_upd"]) / upd if upd else 0.0
    note = f"{writes:,} rows written ({upd:,} updated, {hot:.0f}% HOT)"
    if upd >= HEAVY_UPDATE_SHARE * writes and upd:
        note += ("; heavily updated: if the updates change these columns they stop being HOT and every one "
                 "writes this index too")
    return note


def _why_not(message: str) -> str:
    import re

    from ..database.session import PLATFORM_SCHEMAS

    first = " ".join(message.split()).split(" LINE ")[0][:200]
    platform = re.match(r'relation "([^".]+)\.[^"]+" does not exist', first)
    if platform and platform.group(1) in PLATFORM_SCHEMAS:
        return (f"it reads {platform.group(0).split(chr(34))[1]}, a table of the platform's schema "
                f"{platform.group(1)} (Supabase manages its tables and indexes), which opsbook does not tune")
    if "does not exist" in first:
        return (first + " in the shadow, which holds only the target's tables and PostgreSQL's own code: the "
                "statement uses something else (the database's own functions, types or views), so opsbook "
                "plans it nowhere")
    return first
