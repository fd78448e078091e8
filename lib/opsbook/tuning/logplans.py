"""The server log's slow statements and auto_explain plans, per normalised statement: counts, durations, the
slowest plan summarised as plans.py does, and the planner's misestimates."""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import lru_cache

from ..core.sqltokens import COMMENTS, tokens
from ..logs import LogSourceError
from ..logs.autoexplain import MAX_QUERY_CHARS, LoggedPlan, Read, entries
from . import statement
from .plans import PlanSummary, summarise

MISESTIMATE_FACTOR = 10.0  # actual rows 10x off the estimate: the usual "bad estimate" mark (explain.depesz.com)
MISESTIMATE_MIN_ROWS = 100  # fewer rows both planned and found: a misestimate that costs nothing
MAX_STATEMENTS = 10_000  # distinct statement texts kept; more are counted, not listed
OWN_MARK = "SELECT /* opsbook */ count(*) FROM "  # how statements opsbook builds at run time start (queries.OWN_MARK)
CONSTANTS = frozenset({"ICONST", "FCONST", "SCONST", "USCONST", "BCONST", "XCONST", "PARAM"})
OPERANDS = frozenset({"IDENT", "ICONST", "FCONST", "SCONST", "USCONST", "BCONST", "XCONST", "PARAM", "ASCII_41",
                      "ASCII_93"})
HOW_TO_LOG = ("load auto_explain (session_preload_libraries = 'auto_explain', or shared_preload_libraries) with "
              "auto_explain.log_min_duration = '250ms' and auto_explain.log_format = 'json' (log_analyze = on adds "
              "actual rows, at a timing cost on every statement; log_timing = off lowers it); "
              "log_min_duration_statement = '250ms' counts the slow statements; then give log_path (and "
              "log_line_prefix for a stderr log)")


# A log repeats one statement with other literals: a text without quoted names, comments, dollar quotes or
# backslashes is looked up by its literals masked (a cheap regex) before it is lexed (~100 us a text)
_PLAIN_LITERAL = re.compile(r"'(?:[^']|'')*'|(?<![\w.$])[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?(?![\w.])")
_SAME = re.compile(r'["\\$]|/\*|--')
_MASKED: dict[str, str] = {}
MAX_MASKED = 10_000


def normalise(text: str) -> str:
    """The statement with its constants as $1, $2 ... (see _normalise), cached by its literals masked."""
    if _SAME.search(text):
        return _normalise(text)
    key = _PLAIN_LITERAL.sub("?", text)
    out = _MASKED.get(key)
    if out is None:
        if len(_MASKED) >= MAX_MASKED:
            _MASKED.clear()
        out = _MASKED[key] = _normalise(text)
    return out


@lru_cache(maxsize=4096)
def _normalise(text: str) -> str:
    """The statement with its constants as $1, $2 ... (as pg_stat_statements shows it), comments dropped, words
    lower-cased outside quotes and one space between tokens; a list of constants is one: `IN (1, 2, 3)` and
    `IN ($1, $2)` read alike. The same text from the log and from pg_stat_statements then matches."""
    text = text[:MAX_QUERY_CHARS]
    toks = [t for t in tokens(text) if t.name not in COMMENTS]
    words: list[str] = []
    names: list[str] = []  # each word's token name ("?" for a constant)
    for i, t in enumerate(toks):
        name = t.name
        if name == "ASCII_59" and i == len(toks) - 1:
            break  # a closing semicolon
        if name in CONSTANTS:
            if names[-1:] == ["ASCII_45"] and (len(names) < 2 or names[-2] not in OPERANDS | {"?"}):
                words.pop(), names.pop()  # -5 is one constant, as the parser folds it
            if names[-2:] == ["?", "ASCII_44"]:
                words.pop(), names.pop()  # `1, 2, 3`: one constant
                continue
            words.append("?"), names.append("?")
            continue
        word = text[t.start:t.end + 1]
        words.append(word if word[:1] in "\"'$" or name.startswith("CUT_") else word.lower())
        names.append(name)
    n = 0
    out = []
    for w in words:
        if w == "?":
            n += 1
            w = f"${n}"
        out.append(w)
    return " ".join(out)


def shown(text: str) -> str:
    """The statement as its author wrote it (case and names kept) with every constant as $1, $2 ... and comments
    dropped: what the report shows, with no literal value of the log in it."""
    text = text[:MAX_QUERY_CHARS]
    out, at, n = [], 0, 0
    for t in tokens(text):
        if t.name in CONSTANTS or t.name in COMMENTS:
            out.append(text[at:t.start])
            if t.name in CONSTANTS:
                n += 1
                out.append(f"${n}")
            at = t.end + 1
        elif t.name.startswith("CUT_") or t.name in ("REST", "OPAQUE"):
            out.append(text[at:t.start] + "…")  # a cut or unlexable rest is not shown: it may hold a value
            at = len(text)
            break
    out.append(text[at:])
    return " ".join("".join(out).split())


@dataclass
class Misestimate:
    node: str  # "Seq Scan on public.events"
    relation: tuple[str | None, str] | None
    planned: float  # rows the planner expected, over all loops
    actual: float  # rows found, over all loops
    loops: float
    condition: str = ""
    table_rows: float | None = None  # the table's reltuples when the target's catalogue was read

    @property
    def factor(self) -> float:
        return max(self.planned, self.actual) / max(min(self.planned, self.actual), 1.0)

    def text(self) -> str:
        way = "more" if self.actual > self.planned else "fewer"
        return (f"{self.node}: planned {self.planned:,.0f} rows, actual {self.actual:,.0f} "
                f"({self.factor:,.0f}x {way}{f' over {self.loops:,.0f} loops' if self.loops > 1 else ''})"
                + (f" at {self.condition}" if self.condition else ""))


def misestimates(plan: dict | None, *, factor: float = MISESTIMATE_FACTOR,
                 min_rows: float = MISESTIMATE_MIN_ROWS) -> list[Misestimate]:
    """Nodes whose actual rows x loops differ from the planned rows x loops by `factor` or more (auto_explain with
    log_analyze; a plan without actual rows has none), worst first."""
    out: list[Misestimate] = []
    stack = [plan] if isinstance(plan, dict) else []
    while stack:
        p = stack.pop()
        stack.extend(p.get("Plans", []))
        loops = p.get("Actual Loops")
        if not loops or "Actual Rows" not in p:
            continue  # not analysed, or never executed
        planned, actual = float(p.get("Plan Rows", 0)) * loops, float(p["Actual Rows"]) * loops
        if max(planned, actual) < min_rows or max(planned, actual) < factor * max(min(planned, actual), 1.0):
            continue
        rel = (p.get("Schema"), p["Relation Name"]) if "Relation Name" in p else None
        name = (f"{rel[0]}.{rel[1]}" if rel[0] else rel[1]) if rel else ""
        cond = next((f"{k}: {p[k]}" for k in ("Filter", "Index Cond", "Hash Cond", "Merge Cond", "Join Filter",
                                               "Recheck Cond") if k in p), "")
        out.append(Misestimate(p.get("Node Type", "?") + (f" on {name}" if name else ""), rel, planned, actual,
                               loops, cond[:300]))
    return sorted(out, key=lambda m: -m.factor)


@dataclass
class LogStatement:
    key: str  # the normalised text
    text: str = ""  # the first text seen, as shown(): constants as $n, the author's case and names
    query_id: int | None = None
    count: int = 0  # executions logged by log_min_duration_statement (else: plans logged)
    total_ms: float = 0.0
    max_ms: float = 0.0
    plans: int = 0
    plan_total_ms: float = 0.0
    slowest: LoggedPlan | None = None
    summary: PlanSummary | None = None
    misestimates: list[Misestimate] = field(default_factory=list)
    in_statements: bool = False  # also among pg_stat_statements' rows of this run

    @property
    def executions(self) -> tuple[int, float]:
        """(count, total ms): from the duration lines where there are any, else from the plans' durations."""
        return (self.count, self.total_ms) if self.count else (self.plans, self.plan_total_ms)

    def plan_text(self, n: int = 3) -> str:
        return self.summary.text(n) if self.summary is not None and self.summary.nodes else ""


@dataclass
class LogPlans:
    path: str
    statements: dict[str, LogStatement] = field(default_factory=dict)
    read: Read = field(default_factory=Read)
    error: str | None = None  # the log could not be read at all
    dropped: int = 0  # texts beyond MAX_STATEMENTS
    own_left_out: int = 0

    def for_statement(self, text: str, query_id=None) -> LogStatement | None:
        """The log's entry for a pg_stat_statements row: by queryid when the log named it (log_verbose plans), else
        by the normalised text."""
        if query_id is not None:
            for s in self.statements.values():
                if s.query_id is not None and s.query_id == _int(query_id):
                    return s
        try:
            return self.statements.get(normalise(text or ""))
        except Exception:  # noqa: BLE001 - a text the lexer refuses matches nothing
            return None

    def resolve(self, reltuples: dict[tuple[str, str], float], columns: dict | None = None) -> None:
        """Name the schema of the plans' unqualified tables (a plan without log_verbose gives none) where the target
        has one table of that name, and summarise the plans with what is known of the columns."""
        by_name: dict[str, list[str]] = {}
        for schema, table in reltuples:
            by_name.setdefault(table, []).append(schema)
        for s in self.statements.values():
            if s.slowest is None or s.slowest.plan is None:
                continue
            _qualify(s.slowest.plan, by_name)
            s.summary = summarise(s.slowest.plan, columns or {})
            for m in s.misestimates:
                if m.relation and m.relation[0] is None and len(by_name.get(m.relation[1], [])) == 1:
                    m.relation = (by_name[m.relation[1]][0], m.relation[1])
                    m.node = m.node.replace(f" on {m.relation[1]}", f" on {m.relation[0]}.{m.relation[1]}", 1)
                if m.relation and m.relation[0]:
                    m.table_rows = reltuples.get(m.relation)

    def frame(self):
        """One row per statement, the most total time first."""
        import pandas as pd

        rows = []
        for s in self.statements.values():
            n, total = s.executions
            rows.append({"statement": s.text or s.key, "queryid": s.query_id, "count": n, "total_ms": round(total, 3),
                         "mean_ms": round(total / n, 3) if n else None, "max_ms": round(s.max_ms, 3),
                         "plans": s.plans, "plan": s.plan_text(),
                         "misestimates": "; ".join(m.text() for m in s.misestimates[:3]),
                         "in_pg_stat_statements": s.in_statements})
        cols = ["statement", "queryid", "count", "total_ms", "mean_ms", "max_ms", "plans", "plan", "misestimates",
                "in_pg_stat_statements"]
        df = pd.DataFrame(rows, columns=cols)
        return df.sort_values(["total_ms", "statement"], ascending=[False, True]).reset_index(drop=True)

    def problem_lines(self) -> list[str]:
        return self.read.problems.lines()[:20] + [f"{n} plan(s): {why}" for why, n in
                                                  self.read.unreadable_plans.items()]


def _qualify(plan: dict, by_name: dict[str, list[str]]) -> None:
    stack = [plan]
    while stack:
        p = stack.pop()
        stack.extend(p.get("Plans", []))
        name = p.get("Relation Name")
        if name and "Schema" not in p and len(by_name.get(name, [])) == 1:
            p["Schema"] = by_name[name][0]


def _int(v) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError, OverflowError):
        return None


def read(path: str, *, prefix: str | None = None, log_timezone: str | None = None, since=None, until=None,
         database: str | None = None) -> LogPlans:
    """The log's statements and plans, per normalised text; opsbook's own (application_name opsbook, the
    /* opsbook */ mark) and session chatter (BEGIN, SET ...) left out. A log that cannot be read is said in
    `.error`, never raised; `database`: that database's entries only (where the log names it)."""
    out = LogPlans(str(path))
    try:
        for e in entries(path, prefix=prefix, log_timezone=log_timezone, since=since, until=until, read=out.read):
            if database and e.database and e.database != database:
                continue
            _add(out, e.item)
    except LogSourceError as e:
        out.error = " ".join(str(e).split())[:300]
    except OSError as e:
        out.error = f"unreadable: {e.strerror or e}"
    out.own_left_out = sum(out.read.problems.left_out.values())
    for s in out.statements.values():
        if s.slowest is not None and s.slowest.plan is not None:
            s.summary = summarise(s.slowest.plan, {})
            s.misestimates = misestimates(s.slowest.plan)
    return out


def _add(out: LogPlans, item) -> None:
    plan = isinstance(item, LoggedPlan)
    text = item.query if plan else item.text
    own = bool(text) and text.lstrip().startswith(OWN_MARK)
    if not text or own or statement.session_chatter(text):
        if own:
            out.own_left_out += 1
        return
    try:
        key = normalise(text)
    except Exception:  # noqa: BLE001 - the lexer on a hostile text: the text as written, spaces folded
        key = " ".join(text.split())[:MAX_QUERY_CHARS]
    s = out.statements.get(key)
    if s is None:
        if len(out.statements) >= MAX_STATEMENTS:
            out.dropped += 1
            return
        try:
            s = out.statements[key] = LogStatement(key, shown(text))
        except Exception:  # noqa: BLE001 - the lexer on a hostile text: the normalised key
            s = out.statements[key] = LogStatement(key, key)
    if plan:
        s.plans += 1
        s.plan_total_ms += item.duration_ms
        if item.query_id is not None:
            s.query_id = item.query_id
        if item.plan is not None and (s.slowest is None or item.duration_ms >= s.slowest.duration_ms):
            s.slowest = copy.copy(item)
    else:
        s.count += 1
        s.total_ms += item.duration_ms
    s.max_ms = max(s.max_ms, item.duration_ms)


def from_params(db, p: dict) -> LogPlans | None:
    """The log named by p["log_path"] (None or "": no log), read with p["log_line_prefix"] or else the target's
    own (SHOW), in the target's log_timezone, this database's entries only where the log names databases."""
    path = p.get("log_path")
    if not path:
        return None
    import time  # noqa: PLC0415

    from ..config.paths import user_path  # noqa: PLC0415 - relative to where `opsbook run` was typed
    from ..database.session import QueryTiming  # noqa: PLC0415

    dbname, prefix, zone = None, p.get("log_line_prefix") or None, None
    if db is not None:
        t0 = time.perf_counter()
        try:
            with db.unit():
                dbname, shown, zone = db.raw.execute(
                    "SELECT current_database(), current_setting('log_line_prefix', true), "
                    "current_setting('log_timezone', true)").fetchone()
            prefix = prefix or shown or None
        except Exception:  # noqa: BLE001 - not allowed or not connected: the reader detects the prefix instead
            pass
        db.timings.append(QueryTiming("tuning/log_settings", (time.perf_counter() - t0) * 1000, 1))
    return read(str(user_path(path)), prefix=prefix, log_timezone=zone or None, database=dbname)


def attach(log: LogPlans, rows: list[dict], info: dict | None):
    """Join the log to the run's statements: the tables' schemas and sizes from the target's catalogue, which
    statements pg_stat_statements also has, and the log's plan as the statement's target plan where the target gave
    none (PostgreSQL < 16, or a statement not planned there). Returns the log's statements as a DataFrame."""
    from .target_plan import NO_PLAN_OLD  # noqa: PLC0415

    reltuples, columns = {}, {}
    if info is not None and len(info["tables"]):
        cols = info["columns"]
        for r in info["tables"].itertuples():
            reltuples[(r.schema_name, r.table_name)] = float(r.reltuples)
            columns[(r.schema_name, r.table_name)] = set(cols[cols["oid"] == r.oid]["column_name"])
    log.resolve(reltuples, columns)
    for r in rows:
        s = log.for_statement(r.get("query") or "", r.get("queryid"))
        if s is None:
            continue
        s.in_statements = True
        text = s.plan_text(2)
        if text and r.get("target_plan") in ("", None, NO_PLAN_OLD):
            r["target_plan"] = (f"from the log: {s.slowest.duration_ms:,.1f} ms, cost {s.summary.total_cost:,.0f}: "
                                + text + (f" (misestimate: {s.misestimates[0].text()})" if s.misestimates else ""))
    return log.frame()


def log_only_rows(log: LogPlans, rows: list[dict], columns: list[str], limit: int) -> list[dict]:
    """The log's statements that pg_stat_statements did not give (not installed there, reset since, or beyond its
    top), as statement rows the tuning run plans like the others: the costliest `limit` by logged time. Their calls
    are the executions the log holds (those over log_min_duration_statement, or auto_explain's): an undercount."""
    matched = {id(m) for r in rows if (m := log.for_statement(r.get("query") or "", r.get("queryid"))) is not None}
    only = [s for s in log.statements.values() if id(s) not in matched and s.text and s.executions[0]]
    only.sort(key=lambda s: -s.executions[1])
    out = []
    for n, s in enumerate(only[:limit], 1):
        count, total = s.executions
        row = dict.fromkeys(columns)
        row.update(queryid=f"log-{n}", calls=count, total_exec_ms=total, mean_exec_ms=total / count,
                   max_exec_ms=s.max_ms, hidden=False, query=s.text, source="log")
        out.append(row)
    return out

