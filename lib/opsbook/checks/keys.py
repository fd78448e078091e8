"""Keys: user tables without a primary key (splinter 0004), and the unique index that could become one."""
from __future__ import annotations

import re

from ..core.findings import Finding, Severity
from .registry import Check, CheckContext, register
from .security.rls import q
from .security.scope import TABLE_EXCLUDED
from .standby import QUERY as STANDBY, mark, of, relay

CHECK = "tables.no_primary_key"
WHY = ("Without a primary key a row has no identity: logical replication cannot publish the table's UPDATEs and "
       "DELETEs (they fail once it is in a publication, unless a REPLICA IDENTITY is set), Supabase Realtime and the "
       "dashboard's table editor need one to follow and edit rows, pg_repack refuses it (short of a unique NOT NULL "
       "index), and duplicate rows can creep in unseen.")


def no_primary_key(ctx: CheckContext) -> pd.DataFrame:
    """Tables in user schemas without a primary key, each with the unique index that could become it (catalogue
    only: every role reads it, so nothing is hidden, and it answers the same on a standby)."""
    return mark(ctx.db.fetch("tables/no_primary_key", excluded_schemas=TABLE_EXCLUDED), ctx)


def _ident(name: str) -> str:
    """One name quoted as q() quotes each part of a qualified one."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


def _known(value) -> bool:
    return isinstance(value, str) and bool(value)


def remediation(r) -> str:
    """The statement that gives the table its key: from its unique NOT NULL index where it has one."""
    table = q(r.schema_name, r.table_name)
    if _known(r.index_name) and r.partitioned:
        return (f"ALTER TABLE {table} ADD PRIMARY KEY ({r.index_columns});  -- the columns of its unique index "
                f"{r.index_name}, all NOT NULL (USING INDEX is not supported on a partitioned table: this builds "
                f"the key on every partition)")
    if _known(r.index_name) and _known(r.constraint_name):
        return (f"ALTER TABLE {table} ADD PRIMARY KEY ({r.index_columns});  -- unique constraint "
                f"{r.constraint_name} (index {r.index_name}) already guarantees these NOT NULL columns; its index "
                f"cannot be reused, so this builds a new one; then drop {r.constraint_name} if no foreign key "
                f"references it")
    if _known(r.index_name):
        index = _ident(r.index_name)
        return (f"ALTER TABLE {table} ADD CONSTRAINT {index} PRIMARY KEY USING INDEX {index};  -- its unique index on "
                f"({r.index_columns}), all NOT NULL, becomes the key without a rebuild (a brief ACCESS EXCLUSIVE lock)")
    return (f"ALTER TABLE {table} ADD PRIMARY KEY (<columns that identify a row>);  -- builds the index under an "
            f"ACCESS EXCLUSIVE lock; on a busy table first CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT "
            f"... PRIMARY KEY USING INDEX ...; no such columns: ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY "
            f"PRIMARY KEY (rewrites the table)")


def judge_no_primary_key(df) -> list[Finding]:
    out = []
    for r in df.itertuples():
        name = f"{r.schema_name}.{r.table_name}"
        kind = (f"partitioned table (judged for its {int(r.partitions or 0):,} partitions)" if r.partitioned
                else "table")
        candidate = (f" Its unique index {r.index_name} on ({r.index_columns}) has only NOT NULL columns: it "
                     f"could become the key." if _known(r.index_name) else "")
        identity = (f" Its REPLICA IDENTITY is {r.replica_identity.upper()}, so logical replication can publish "
                    f"its changes, but the other needs stay." if r.replica_identity in ("full", "index") else "")
        out.append(Finding(CHECK, Severity.INFO, f"{kind} {name} has no primary key",
                           detail=f"About {r.rows_est:,.0f} rows. {WHY}{candidate}{identity}", objects=[name],
                           value=r.index_name if _known(r.index_name) else None, remediation=remediation(r)))
    return relay(out, of(df)) or [Finding(CHECK, Severity.OK, "every user table has a primary key",
                                          detail="Tables in user schemas, read from the catalogue (every role may "
                                                 "read it: no table is hidden from this check); partitions judged "
                                                 "by their partitioned table.")]


NO_PRIMARY_KEY = register(Check(
    id=CHECK,
    description="Tables in user schemas without a primary key (splinter 0004, INFO): system, platform and "
                "extension-owned schemas and extension members left out, partitions judged by their partitioned "
                "table; the remediation names a unique NOT NULL index that could become the key where there is one. "
                "Catalogue only: every role sees every table, and it runs on a standby.",
    data=no_primary_key, judge=judge_no_primary_key, queries=("tables/no_primary_key", STANDBY),
    runbooks=("capacity-planning",)))
