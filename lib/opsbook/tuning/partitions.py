"""Partition trees in the shadow: which trees can be copied (whole, or not at all: a tree without one of its
partitions would prune and plan differently), the DDL of each member from the catalogue's own text of its key and
bounds, the counters of a partitioned table (the sums of its leaves'), and plans read per partitioned table (a scan
of a partition, or of a partition's index, is a scan of the table the statement names)."""
from __future__ import annotations

from .names import fit

COPYABLE_KINDS = ("r", "m", "p")


def roll_up(tables):
    """The tables frame with each partitioned table's write counters summed from its leaves, and its row count
    from them when it was never analyzed (reltuples -1); `reltuples_own` keeps the target's own value, which the
    shadow restores."""
    if not len(tables) or "parent_oid" not in tables.columns:
        return tables
    tables = tables.copy()
    tables["reltuples_own"] = tables["reltuples"]
    parent = {int(r.oid): as_oid(r.parent_oid) for r in tables.itertuples()}
    sums: dict[int, dict[str, float]] = {}
    counters = ("n_tup_ins", "n_tup_upd", "n_tup_hot_upd", "n_tup_del", "seq_scan", "idx_scan")
    for r in tables.itertuples():
        if r.relkind == "p":
            continue
        up = parent.get(int(r.oid))
        while up is not None:
            acc = sums.setdefault(up, {k: 0.0 for k in (*counters, "reltuples")})
            for k in counters:
                acc[k] += float(getattr(r, k))
            acc["reltuples"] += max(float(r.reltuples), 0.0)
            up = parent.get(up)
    for i, r in tables.iterrows():
        acc = sums.get(int(r["oid"]))
        if r["relkind"] != "p" or acc is None:
            continue
        for k in counters:
            tables.at[i, k] = int(acc[k])
        if float(r["reltuples"]) < 0:
            tables.at[i, "reltuples"] = acc["reltuples"]
    return tables


def tree_refusals(tables, own: dict[int, str]) -> dict[int, str]:
    """oid -> why not copied: `own` (a member's own reason, such as a column of a user's type), a partitioned
    table's key of user code, a partition that is no table; and every member of a tree one of whose members cannot
    be copied."""
    if not len(tables) or "parent_oid" not in tables.columns:
        return dict(own)
    parent = {int(r.oid): as_oid(r.parent_oid) for r in tables.itertuples()}
    names = {int(r.oid): f"{r.schema_name}.{r.table_name}" for r in tables.itertuples()}
    reasons = dict(own)
    for r in tables.itertuples():
        if r.relkind not in COPYABLE_KINDS:
            reasons.setdefault(int(r.oid), f"a partition of kind '{r.relkind}' (foreign or other: not a table)")
        elif r.relkind == "p" and not _true(r.key_builtin):
            reasons.setdefault(int(r.oid), f"its partition key ({r.partition_key}) uses code that is not "
                                           "PostgreSQL's own (a function, operator class or collation of a user)")

    def root(oid: int) -> int:
        while parent.get(oid) is not None and parent[oid] in parent:
            oid = parent[oid]
        return oid

    broken: dict[int, str] = {}
    for oid, why in reasons.items():
        broken.setdefault(root(oid), f"{names.get(oid, oid)}: {why}")
    out = dict(reasons)
    for oid in parent:
        r = root(oid)
        if r in broken and oid not in out:
            out[oid] = f"its partition tree cannot be copied whole ({broken[r]})"
    return out


def create_sql(row, body: str, parent: str | None, not_null: list[str], ident) -> str:
    """CREATE TABLE for a plain table, a partitioned one, or a partition (of `parent`, with its bound)."""
    qualified = f"{ident(row.schema_name)}.{ident(row.table_name)}"
    storage = "" if row.relkind == "p" else " WITH (autovacuum_enabled = off)"
    key = f" PARTITION BY {row.partition_key}" if row.relkind == "p" else ""
    if parent is None:
        return f"CREATE TABLE {qualified} ({body}){key}{storage}"
    options = f" ({', '.join(f'{ident(c)} WITH OPTIONS NOT NULL' for c in not_null)})" if not_null else ""
    return f"CREATE TABLE {qualified} PARTITION OF {parent}{options} {row.bound}{key}{storage}"  # FOR VALUES/DEFAULT


def to_parents(plan: dict, tables: dict[tuple[str, str], tuple[str, str]], indexes: dict[str, str]) -> dict:
    """The plan with each partition's scan named by the partitioned table at the top of its tree (`tables`:
    partition -> root) and each partition's index by the partitioned index it is attached to (`indexes`); the
    partition's own name kept under "Partition"."""
    rel = (plan.get("Schema"), plan.get("Relation Name"))
    if rel in tables:
        plan["Partition"] = plan["Relation Name"]
        plan["Schema"], plan["Relation Name"] = tables[rel]
    if plan.get("Index Name") in indexes:
        plan["Index Name"] = indexes[plan["Index Name"]]
    for k in plan.get("Plans", []):
        to_parents(k, tables, indexes)
    return plan


def index_names(plan: dict) -> set[str]:
    out = {plan["Index Name"]} if "Index Name" in plan else set()
    for k in plan.get("Plans", []):
        out |= index_names(k)
    return out


def as_oid(value) -> int | None:
    try:
        import math

        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return int(value)
    except (TypeError, ValueError):
        return None


def _true(value) -> bool:
    import math

    return value is not None and not (isinstance(value, float) and math.isnan(value)) and bool(value)


def create_index_sql(tables, schema: str, table: str, name: str, spec: str, ident) -> str:
    """The statements that build index `name` (`spec`: its column list and predicate) without blocking writes.
    PostgreSQL builds no index on a partitioned table concurrently: there, the partitioned index is made on the
    table only (ON ONLY: invalid, no rows read), each partition's own concurrently, and each attached to it (the
    partitioned index turns valid once every partition has one)."""
    rows = {int(r.oid): r for r in tables.itertuples()}
    me = next((r for r in rows.values() if (r.schema_name, r.table_name) == (schema, table)), None)
    if me is None or me.relkind != "p" or "parent_oid" not in tables.columns:
        return f"CREATE INDEX CONCURRENTLY {ident(name)} ON {ident(schema)}.{ident(table)} {spec};"
    children: dict[int, list] = {}
    for r in rows.values():
        up = as_oid(r.parent_oid)
        if up is not None:
            children.setdefault(up, []).append(r)
    out: list[str] = []

    def build(r, index: str, parent_index: str | None) -> None:
        target = f"{ident(r.schema_name)}.{ident(r.table_name)}"
        if r.relkind == "p":
            out.append(f"CREATE INDEX {ident(index)} ON ONLY {target} {spec};")
            for c in sorted(children.get(int(r.oid), []), key=lambda x: x.table_name):
                build(c, fit(f"{c.table_name}_{name}"), f"{ident(r.schema_name)}.{ident(index)}")
        else:
            out.append(f"CREATE INDEX CONCURRENTLY {ident(index)} ON {target} {spec};")
        if parent_index:
            out.append(f"ALTER INDEX {parent_index} ATTACH PARTITION {ident(r.schema_name)}.{ident(index)};")

    build(me, name, None)
    return " ".join(out)
