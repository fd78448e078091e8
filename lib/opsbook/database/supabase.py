"""Supabase-only schemas (auth, storage): one definition of monthly active users, and a plain skip when absent or
not readable, asked of the catalogue before any query (nothing written into the server's log)."""
from __future__ import annotations

import re
from typing import Any

from ..core.errors import SkipCheck
from ..core.findings import PARTIAL

MAU_WINDOW_DAYS = 30  # Supabase bills MAU per billing cycle; a rolling 30 days approximates it
PRODUCTS = {"auth": "Supabase Auth", "storage": "Supabase Storage"}


def tables_named(sql_text: str, schema: str) -> list[str]:
    """The `schema.table` names a query reads (comments aside), in order of first mention."""
    body = "\n".join(line.split("--", 1)[0] for line in sql_text.splitlines())
    return list(dict.fromkeys(f"{schema}.{t}" for t in re.findall(rf"\b{schema}\.([a-z_][a-z0-9_]*)\b", body)))


def require_readable(db, schema: str, relations: list[str]) -> None:
    """SkipCheck unless every relation exists and this role may read it, asked of the catalogue (a query on a
    missing table or a schema without USAGE would write an ERROR into the server's log)."""
    from .readable import access  # noqa: PLC0415

    seen = access(db, *relations)
    if not all(a.present for a in seen.values()):
        raise absent(schema)
    unreadable = [a for a in seen.values() if not a.readable]
    if unreadable:
        raise not_readable(schema, unreadable)


def not_readable(schema: str, unreadable) -> SkipCheck:
    from .readable import grants  # noqa: PLC0415

    lacks = ", ".join(dict.fromkeys(x for a in unreadable for x in a.lacks()))
    return SkipCheck(f"{PARTIAL}: {PRODUCTS[schema]} is here but role {unreadable[0].role} may not read it (it lacks "
                     f"{lacks}): not measured; "
                     f"{grants(unreadable)} (Supabase grants the {schema} schema to its own roles only), or grant "
                     "pg_read_all_data")


def fetch(db, name: str, schema: str, **params: Any):
    """db.fetch(name), once the catalogue says the Supabase tables it reads exist and are readable; a missing
    schema or table is said as what it most likely means, an unreadable one as partial visibility."""
    import psycopg.errors as pe  # noqa: PLC0415
    from sqlalchemy.exc import DBAPIError  # noqa: PLC0415

    from . import sql as sqlfiles  # noqa: PLC0415

    require_readable(db, schema, tables_named(sqlfiles.load(name, db.server_version_num), schema))
    try:
        return db.fetch(name, **params)
    except DBAPIError as e:
        raise _plainly(e.orig, schema, pe) from None
    except pe.Error as e:
        raise _plainly(e, schema, pe) from None


def _plainly(orig, schema: str, pe) -> BaseException:
    product = PRODUCTS[schema]
    if isinstance(orig, (pe.UndefinedTable, pe.InvalidSchemaName)):
        return absent(schema)
    if isinstance(orig, pe.UndefinedColumn):
        column = (orig.diag.message_primary or "").replace('"', "")
        return SkipCheck(f"the {schema} schema here is not the {product} schema opsbook knows ({column}); "
                         "report the Supabase version")
    return orig


def absent(schema: str) -> SkipCheck:
    return SkipCheck(f"no {PRODUCTS[schema]} schema here (plain PostgreSQL?); nothing to measure without it")


def monthly_active_users(db, *, as_of=None, days: int = MAU_WINDOW_DAYS):
    """One row: mau, users_total, signed_in, audit_actors (NaN without the audit log); attrs['source'] says which
    tables counted. The one definition both capacity-planning (auth.mau) and cost-analysis use: users who signed
    in (auth.users.last_sign_in_at) or, where auth.audit_log_entries exists and is readable, logged in, refreshed
    a token or signed up, within `days` days up to `as_of` (None: the server's now)."""
    src = db.fetch("auth/sources").iloc[0]
    if not src["has_users"]:
        raise absent("auth")
    if not src["can_read_users"]:
        require_readable(db, "auth", ["auth.users"])  # says what this role lacks
    audit = bool(src["has_audit_log"] and src["can_read_audit_log"])
    df = fetch(db, "auth/mau_audit" if audit else "auth/mau", "auth", as_of=as_of, days=days)
    why = ("" if audit else " (auth.audit_log_entries " + ("is not readable by this role" if src["has_audit_log"]
                                                            else "does not exist here")
           + ": sign-ins only, token refreshes not counted)")
    df.attrs["source"] = (f"auth.users.last_sign_in_at{' and auth.audit_log_entries' if audit else ''}, "
                          f"{days} days{why}")
    return df
