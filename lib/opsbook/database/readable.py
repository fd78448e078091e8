"""May this role read a relation? Asked of the catalogue before the query, so that opsbook writes no ERROR line
into the server's log (a missing table, a schema without USAGE, a superuser-only view) and says what it lacks."""
from __future__ import annotations

import re
from dataclasses import dataclass


def ident(name: str) -> str:
    """A role name as SQL writes it: quoted unless plain lower-case."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Access:
    """What the catalogue says about one relation ('schema.name') for the current role."""

    relation: str
    role: str
    present: bool
    schema_usage: bool
    can_select: bool
    can_execute: bool  # every function the relation (a view) calls

    @property
    def readable(self) -> bool:
        return self.present and self.schema_usage and self.can_select and self.can_execute

    @property
    def schema(self) -> str:
        return self.relation.split(".", 1)[0]

    def lacks(self) -> list[str]:
        """The privileges missing, in the words of the GRANT that gives them."""
        out = [] if self.schema_usage or self.schema == "pg_catalog" else [f"USAGE ON SCHEMA {self.schema}"]
        if not self.can_select:
            out.append(f"SELECT ON {self.relation}")
        if not self.can_execute:
            out.append(f"EXECUTE ON the functions {self.relation} calls")
        return out

    def why_not(self) -> str:
        """One clause: why this role cannot read it ('' when it can)."""
        if not self.present:
            return f"there is no {self.relation}"
        lacks = self.lacks()
        return f"role {self.role} lacks {' and '.join(lacks)}" if lacks else ""


def access(db, *relations: str) -> dict[str, Access]:
    """{relation: Access} for each 'schema.name' given, in one catalogue query (no name is looked up)."""
    df = db.fetch("security/readable", relations=list(relations))
    return {r.relation: Access(r.relation, r.role_name, bool(r.present), bool(r.schema_usage), bool(r.can_select),
                               bool(r.can_execute)) for r in df.itertuples()}


def grants(accesses, role: str | None = None) -> str:
    """The GRANT statements that would let the role read every relation in `accesses` (Access objects)."""
    accesses = [a for a in accesses if a.present and not a.readable]
    if not accesses:
        return ""
    role = ident(role or accesses[0].role)
    schemas = sorted({a.schema for a in accesses if not a.schema_usage and a.schema != "pg_catalog"})
    tables = [a.relation for a in accesses if not a.can_select]
    out = [f"GRANT USAGE ON SCHEMA {', '.join(schemas)} TO {role}"] if schemas else []
    if tables:
        out.append(f"GRANT SELECT ON {', '.join(tables)} TO {role}")
    return "; ".join(out)
