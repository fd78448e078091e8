"""A target opsbook has no price list for (plain PostgreSQL, no `plan`): the usage it measured, and no bill."""
from __future__ import annotations

from typing import Any

from . import usage as usage_mod

NOT_PRICED = "not a Supabase project and no plan configured: no bill computed"
HOW_TO_PRICE = ("set plan (and compute) for this target in opsbook.toml, or pass -p plan=..., if it is a Supabase "
                "project reached through a role that cannot see its catalogue")

# Supabase's API roles and its auth schema, as pg_catalog shows them to any role: no Supabase object is read, so a
# plain server logs no error and a least-privileged role sees the same answer as a superuser.
SUPABASE_SHAPED_SQL = """
SELECT (SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname IN ('anon', 'authenticated')) = 2
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'auth') AS supabase_shaped"""


def plan_given(target: Any, params: dict[str, Any]) -> bool:
    return bool(params.get("plan") or (target is not None and (target.plan or target.extra.get("plan"))))


def priced(db, target: Any, params: dict[str, Any]) -> bool:
    """A bill is computed for a target with a plan (parameter or opsbook.toml) or one that is Supabase-shaped."""
    return plan_given(target, params) or bool(db.scalar(SUPABASE_SHAPED_SQL))


def measured_usage(db, params: dict[str, Any], csv_q: dict, notes: list[str]) -> usage_mod.Usage:
    """Database sizes from SQL, and whatever the parameters or a usage CSV give (egress...); no Supabase schema is
    queried and no disk size is estimated from Supabase's auto-scaling rule."""
    dbs = db.fetch("cost/database_sizes")
    total = float(dbs["size_bytes"].fillna(0).sum())
    sql_q = {"database": usage_mod.Quantity("database", total / usage_mod.GB, "database",
                                            f"sum of pg_database_size over {len(dbs)} database"
                                            f"{'s' * (len(dbs) != 1)}")}
    u = usage_mod.combine(sql_q, csv_q, usage_mod.from_params(params), {"databases": dbs}, {}, notes=notes)
    if u.quantities.get("disk") is not None and u.quantities["disk"].source == "database":
        del u.quantities["disk"]  # an estimate by Supabase's rule, not a measurement
    return u


def summary(usage: usage_mod.Usage, peak: float | None, max_connections: int | None) -> str:
    """One sentence of what was measured, for the finding and the report."""
    from ..core.display import human_bytes  # noqa: PLC0415

    parts = []
    for q in usage.quantities.values():
        if q.value is None:
            continue
        if q.item in usage_mod.SIZE_ITEMS:
            parts.append(f"{q.item.replace('_', ' ')} {human_bytes(q.value * usage_mod.GB)} ({q.source})")
        else:
            parts.append(f"{q.item.replace('_', ' ')} {q.value:,.0f} ({q.source})")
    if "egress" not in usage.quantities:
        parts.append("egress not known (SQL cannot see it; -p egress_gb=...)")
    if peak is not None:
        parts.append(f"connections {peak:,.0f} of {max_connections or '?'} (one sample now)")
    return "Measured: " + "; ".join(parts) + "."
