"""auto_explain's plans and log_min_duration_statement's statements in a server log, read as untrusted text."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Iterator

from .formats import Problems

# Caps: the log is untrusted input (anyone who can run SQL writes into it). A plan's text or JSON longer than
# MAX_MESSAGE_CHARS is read up to there (a text plan partly, a JSON one not at all); nodes beyond MAX_NODES or
# deeper than MAX_DEPTH are left out; every text kept is cut at MAX_FIELD_CHARS, a query text at MAX_QUERY_CHARS.
MAX_MESSAGE_CHARS = 1_000_000
MAX_NODES = 5_000
MAX_DEPTH = 100
MAX_FIELD_CHARS = 2_000
MAX_QUERY_CHARS = 32_000

PLAN_HEAD = re.compile(r"duration: ([0-9]+(?:\.[0-9]+)?) ms  plan:\n?")
STATEMENT_HEAD = re.compile(r"duration: ([0-9]+(?:\.[0-9]+)?) ms  (statement|execute ([^:\n]{0,200})): ?")
_NUM = r"([0-9]+(?:\.[0-9]+)?)"
NODE_LINE = re.compile(r"(?P<head>\S.*?)  \(cost=" + _NUM + r"\.\." + _NUM + r" rows=" + _NUM + r" width=" + _NUM
                       + r"\)(?: \((?:actual (?:time=" + _NUM + r"\.\." + _NUM + r" )?rows=" + _NUM + r" loops="
                       + _NUM + r"|(?P<never>never executed))\))?")
DETAIL = re.compile(r"(?P<key>[A-Z][A-Za-z ]{0,60}): (?P<value>.*)")
_IDENT = r'(?:"(?:[^"]|"")*"|[^\s."]+)'
ON_RELATION = re.compile(rf"(?P<what>.*?)(?: using (?P<index>{_IDENT}))? on (?:(?P<schema>{_IDENT})\.)?"
                         rf"(?P<name>{_IDENT})(?: (?P<alias>{_IDENT}))?\Z")
JOIN = re.compile(r"(Nested Loop|Hash|Merge)(?: (?:Left|Right|Full|Semi|Anti|Right Semi|Right Anti))?(?: Join)?\Z")
LABEL = re.compile(r"(SubPlan|InitPlan|CTE) \S+")
RELATION_SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Tid Scan", "Tid Range Scan",
                  "Sample Scan", "Foreign Scan", "ModifyTable", "Custom Scan"}
MODIFY = {"Insert": "Insert", "Update": "Update", "Delete": "Delete", "Merge": "Merge"}
TEXT_KEYS = ("Filter", "Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond", "Join Filter", "TID Cond",
             "One-Time Filter", "Order By")
COUNT_KEYS = ("Rows Removed by Filter", "Rows Removed by Index Recheck", "Rows Removed by Join Filter",
              "Heap Fetches")
NUMBER_KEYS = ("Startup Cost", "Total Cost", "Plan Rows", "Plan Width", "Actual Startup Time", "Actual Total Time",
               "Actual Rows", "Actual Loops", *COUNT_KEYS, "Shared Hit Blocks", "Shared Read Blocks",
               "Shared Dirtied Blocks", "Shared Written Blocks", "Temp Read Blocks", "Temp Written Blocks")
STRING_KEYS = ("Node Type", "Relation Name", "Schema", "Alias", "Index Name", "Join Type", "Strategy",
               "Parent Relationship", "Subplan Name", "Operation", "Scan Direction", "Function Name", "CTE Name",
               "Custom Plan Provider", *TEXT_KEYS)
_BUFFERS = re.compile(r"(shared|temp|local) ((?:(?:hit|read|dirtied|written)=\d+ ?)+)")


@dataclass
class LoggedPlan:
    """One auto_explain message: the executor's duration, the query text and the plan as EXPLAIN (FORMAT JSON)
    shapes it ("Node Type", "Relation Name", "Plans", ...; "Schema" only where the log names it: log_verbose).
    `plan` is None when it could not be read; `problem` says why, or what was left out."""

    duration_ms: float
    fmt: str  # text | json | yaml | xml
    query: str = ""
    plan: dict | None = None
    query_id: int | None = None
    analyzed: bool = False
    problem: str | None = None


@dataclass
class LoggedStatement:
    """One log_min_duration_statement line: `duration: N ms  statement: ...` or `... execute <name>: ...`."""

    duration_ms: float
    text: str
    prepared: str | None = None


@dataclass
class Entry:
    """A plan or statement with the event that carried it."""

    ts: object
    database: str | None
    user: str | None
    application: str | None
    pid: int | None
    item: LoggedPlan | LoggedStatement
    source: str | None = None
    line: int | None = None


def parse(message: str) -> LoggedPlan | LoggedStatement | None:
    """The plan or statement in one log message, or None when it is neither. Never raises on any text."""
    if not message or not message.startswith("duration: "):
        return None
    m = PLAN_HEAD.match(message)
    if m:
        return parse_plan(float(m.group(1)), message[m.end():])
    m = STATEMENT_HEAD.match(message)
    if m:
        prepared = m.group(3) if m.group(2).startswith("execute") else None
        return LoggedStatement(float(m.group(1)), message[m.end():][:MAX_QUERY_CHARS].strip(), prepared)
    return None  # "duration: N ms" alone (log_duration), parse/bind phases: no execution to count


def parse_plan(duration_ms: float, body: str) -> LoggedPlan:
    cut = len(body) > MAX_MESSAGE_CHARS
    body = body[:MAX_MESSAGE_CHARS] if cut else body
    head = body.lstrip()[:1]
    if head == "{":
        out = _json_plan(duration_ms, body)
    elif head == "<":
        out = LoggedPlan(duration_ms, "xml", problem="auto_explain.log_format = xml: not read (use json or text)")
    elif re.search(r"^\s*(?:Plan:|- Plan:)\s*$|^\s+Node Type: ", body[:20_000], re.M):
        out = LoggedPlan(duration_ms, "yaml", problem="auto_explain.log_format = yaml: not read (use json or text)")
    else:
        out = _text_plan(duration_ms, body)
    if cut:
        out.problem = out.problem or f"plan longer than {MAX_MESSAGE_CHARS:,} characters: read up to there"
    return out


# ------------------------------------------------------------------ json
_QUERY_TEXT = re.compile(r'"Query Text": "((?:[^"\\]|\\.){0,%d})' % MAX_QUERY_CHARS, re.S)


def _json_plan(duration_ms: float, body: str) -> LoggedPlan:
    out = LoggedPlan(duration_ms, "json")
    try:
        d = json.loads(body)
    except (ValueError, RecursionError):
        out.problem = "JSON plan that does not parse (cut off?): its query text only"
        m = _QUERY_TEXT.search(body)
        if m:
            try:
                out.query = json.loads('"' + m.group(1) + '"')
            except ValueError:
                out.query = m.group(1)
        return out
    if not isinstance(d, dict):
        out.problem = "JSON plan that is not an object"
        return out
    q = d.get("Query Text")
    out.query = q[:MAX_QUERY_CHARS] if isinstance(q, str) else ""
    out.query_id = _int(d.get("Query Identifier"))
    budget = [MAX_NODES]
    out.plan = clean(d.get("Plan"), budget)
    if out.plan is None:
        out.problem = "JSON plan without a Plan object"
    elif budget[0] <= 0:
        out.problem = f"plan of more than {MAX_NODES:,} nodes: the rest left out"
    out.analyzed = out.plan is not None and "Actual Loops" in out.plan
    return out


def clean(p, budget: list[int], depth: int = 0) -> dict | None:
    """A plan node (and its children) holding only known keys, with numbers as floats and texts cut: what plans.py
    and misestimates() read is then safe whatever the log held."""
    if not isinstance(p, dict) or budget[0] <= 0 or depth > MAX_DEPTH:
        return None
    budget[0] -= 1
    out: dict = {}
    for k in STRING_KEYS:
        v = p.get(k)
        if isinstance(v, str):
            out[k] = v[:MAX_FIELD_CHARS]
    for k in NUMBER_KEYS:
        v = _float(p.get(k))
        if v is not None:
            out[k] = v
    keys = p.get("Sort Key")
    if isinstance(keys, list):
        out["Sort Key"] = [str(x)[:MAX_FIELD_CHARS] for x in keys[:64] if isinstance(x, (str, int, float))]
    out.setdefault("Node Type", "?")
    kids = p.get("Plans")
    if isinstance(kids, list):
        children = [c for c in (clean(k, budget, depth + 1) for k in kids[:MAX_NODES]) if c is not None]
        if children:
            out["Plans"] = children
    return out


def _float(v) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        f = float(v)
        return f if f == f and abs(f) < 1e300 else None
    return None


def _int(v) -> int | None:
    try:
        return int(v) if not isinstance(v, bool) and v is not None else None
    except (TypeError, ValueError, OverflowError):
        return None


# ------------------------------------------------------------------ text
def _text_plan(duration_ms: float, body: str) -> LoggedPlan:
    """EXPLAIN's text format as auto_explain writes it: `Query Text: ...` (maybe many lines), then the root node at
    the margin, children as `->  ` lines indented under it, each node's details two spaces deeper."""
    out = LoggedPlan(duration_ms, "text")
    lines = body.split("\n")
    # a tool along the way turned stderr's continuation tabs into spaces (the reader keeps those): take them off
    pad = min((len(x) - len(x.lstrip(" ")) for x in lines if x.strip()), default=0)
    if pad:
        lines = [x[pad:] for x in lines]
    root_at = None
    for i, line in enumerate(lines):
        if i and NODE_LINE.match(line) and not line.startswith((" ", "\t")):
            root_at = i
            break
    first = lines[0] if lines else ""
    query_lines = lines[:root_at] if root_at is not None else lines
    if first.startswith("Query Text: "):
        query_lines = [first[12:], *query_lines[1:]]
        # Query Parameters (PostgreSQL 16+) come after the text, before the plan
        while query_lines and query_lines[-1].startswith("Query Parameters: "):
            query_lines.pop()
        out.query = "\n".join(query_lines)[:MAX_QUERY_CHARS].strip()
    if root_at is None:
        out.problem = "no plan node in the text (cut off, or not auto_explain's output)"
        return out
    stack: list[tuple[int, dict]] = []  # (column of the node's name, node)
    label: str | None = None
    budget = MAX_NODES
    root: dict | None = None
    for line in lines[root_at:]:
        if budget <= 0:
            out.problem = f"plan of more than {MAX_NODES:,} nodes: the rest left out"
            break
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        text = line.strip()
        if root is not None and indent == 0:
            m = DETAIL.match(text)
            if m and m.group("key") == "Query Identifier":
                out.query_id = _int(m.group("value").strip())
            continue  # Planning/Execution Time, Settings, JIT, triggers: after the tree
        if root is None or text.startswith("->  "):
            col = indent + 4 if root is not None else 0
            node = _node(text[4:] if root is not None else text)
            if node is None:
                out.problem = "a plan line that could not be read: the rest of that branch left out"
                continue
            budget -= 1
            if root is None:
                root = node
                stack = [(0, node)]
                continue
            while stack and stack[-1][0] >= col:
                stack.pop()
            if not stack or len(stack) > MAX_DEPTH:
                out.problem = "a plan line out of place: left out"
                continue
            if label:
                node["Subplan Name"], label = label[:MAX_FIELD_CHARS], None
            stack[-1][1].setdefault("Plans", []).append(node)
            stack.append((col, node))
            continue
        while len(stack) > 1 and stack[-1][0] >= indent:
            stack.pop()
        owner = stack[-1][1] if stack else root
        if LABEL.fullmatch(text.split(" (")[0]):
            label = text
            continue
        m = DETAIL.match(text)
        if m:
            _detail(owner, m.group("key"), m.group("value"))
    out.plan = root
    out.analyzed = root is not None and "Actual Loops" in root
    return out


def _node(text: str) -> dict | None:
    m = NODE_LINE.match(text)
    if not m:
        return None
    g = m.groups()
    node: dict = {"Startup Cost": float(g[1]), "Total Cost": float(g[2]), "Plan Rows": float(g[3]),
                  "Plan Width": float(g[4])}
    if g[7] is not None:
        node.update({"Actual Rows": float(g[7]), "Actual Loops": float(g[8])})
        if g[5] is not None:
            node.update({"Actual Startup Time": float(g[5]), "Actual Total Time": float(g[6])})
    elif m.group("never"):
        node.update({"Actual Rows": 0.0, "Actual Loops": 0.0})
    _head(node, m.group("head")[:MAX_FIELD_CHARS])
    return node


def _head(node: dict, head: str) -> None:
    """`Parallel Index Scan Backward using i on s.t x` -> Node Type, Index Name, Relation Name, Schema, Alias..."""
    what, on = head, None
    m = ON_RELATION.match(head)
    if m and m.group("what"):
        what, on = m.group("what"), m
    elif head.startswith("Bitmap Index Scan on "):
        node["Node Type"], node["Index Name"] = "Bitmap Index Scan", _unquote(head[21:].strip())
        return
    for prefix in ("Parallel ", "Async ", "Partial ", "Finalize ", "Simple "):
        if what.startswith(prefix):
            what = what[len(prefix):]
    if what.endswith(" Backward"):
        what, node["Scan Direction"] = what[:-9], "Backward"
    if what in MODIFY:
        node["Operation"], what = MODIFY[what], "ModifyTable"
    elif what in ("HashAggregate", "GroupAggregate", "MixedAggregate"):
        node["Strategy"], what = what.removesuffix("Aggregate").replace("Group", "Sorted"), "Aggregate"
    elif what.startswith(("HashSetOp", "SetOp")):
        what = "SetOp"
    elif what.startswith("Custom Scan ("):
        node["Custom Plan Provider"], what = what[13:].rstrip(")"), "Custom Scan"
    else:
        j = JOIN.match(what)
        if j:
            what = "Nested Loop" if j.group(1) == "Nested Loop" else f"{j.group(1)} Join"
    node["Node Type"] = what
    if on is None:
        return
    name, schema, alias = _unquote(on.group("name")), on.group("schema"), on.group("alias")
    if on.group("index"):
        node["Index Name"] = _unquote(on.group("index"))
    if what in RELATION_SCANS:
        node["Relation Name"] = name
        if schema:
            node["Schema"] = _unquote(schema)
        node["Alias"] = _unquote(alias) if alias else name
    elif what == "Function Scan":
        node["Function Name"], node["Alias"] = name, _unquote(alias) if alias else name
    elif what == "CTE Scan":
        node["CTE Name"], node["Alias"] = name, _unquote(alias) if alias else name
    else:
        node["Alias"] = _unquote(alias) if alias else name


def _detail(node: dict, key: str, value: str) -> None:
    value = value[:MAX_FIELD_CHARS]
    if key in TEXT_KEYS:
        node[key] = value
    elif key in COUNT_KEYS:
        try:
            node[key] = float(value.split()[0])
        except (ValueError, IndexError):
            pass
    elif key in ("Sort Key", "Group Key", "Presorted Key"):
        node[key] = split_keys(value)
    elif key == "Buffers":
        for kind, counts in _BUFFERS.findall(value):
            for part in counts.split():
                name, _, n = part.partition("=")
                node[f"{kind.title()} {name.title()} Blocks"] = float(n)


def split_keys(value: str) -> list[str]:
    """`a, lower((b)::text) DESC` -> ["a", "lower((b)::text) DESC"]: commas inside parentheses or quotes stay."""
    out, depth, quote, start = [], 0, "", 0
    for i, c in enumerate(value):
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(value[start:i].strip())
            start = i + 1
    out.append(value[start:].strip())
    return [k for k in out if k][:64]


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') and name.endswith('"') and len(name) > 1 else name


# ------------------------------------------------------------------ events
@dataclass
class Read:
    """What reading a log for plans and statements met: counts of each, and the problems (a Problems)."""

    problems: Problems = field(default_factory=Problems)
    plans: int = 0
    statements: int = 0
    unreadable_plans: dict[str, int] = field(default_factory=dict)

    def note(self, why: str) -> None:
        self.unreadable_plans[why] = self.unreadable_plans.get(why, 0) + 1


def entries(path, *, prefix: str | None = None, fmt: str | None = None, log_timezone: str | None = None,
            since=None, until=None, read: Read | None = None) -> Iterator[Entry]:
    """The plans and slow statements of a log file, folder or glob, opsbook's own sessions left out (by
    application_name, as the reader does). Raises LogSourceError only for a path that is no log at all."""
    from .reader import iter_events  # noqa: PLC0415

    read = read if read is not None else Read()
    for e in iter_events(path, fmt=fmt, prefix=prefix, since=since, until=until, problems=read.problems,
                         log_timezone=log_timezone, own=False):
        if e.kind != "slow_statement":
            continue
        try:
            item = parse(e.message)
        except Exception as x:  # noqa: BLE001 - untrusted text: a parser bug must cost one entry, not the run
            read.note(f"plan not read ({type(x).__name__})")
            continue
        if item is None:
            continue
        if isinstance(item, LoggedPlan):
            read.plans += 1
            if item.problem:
                read.note(item.problem)
        else:
            read.statements += 1
        yield Entry(e.ts, e.database, e.user, e.application, e.pid, item, e.source, e.line)
