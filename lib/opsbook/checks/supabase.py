"""Supabase-only schemas (auth, storage): one definition of monthly active users, and a plain skip when absent."""
from __future__ import annotations

from typing import Any

from ..errors import SkipCheck

MAU_WINDOW_DAYS = 30  # Supabase bills MAU per billing cycle; a rolling 30 days approximates it
PRODUCTS = {"auth": "Supabase Auth", "storage": "Supabase Storage"}


def fetch(db, name: str, schema: str, **params: Any):
    """db.fetch(name), with a missing Supabase schema or table said as what it most likely means."""
    import psycopg.errors as pe  # noqa: PLC0415
    from sqlalchemy.exc import DBAPIError  # noqa: PLC0415

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
    audit = bool(src["has_audit_log"] and src["can_read_audit_log"])
    df = fetch(db, "auth/mau_audit" if audit else "auth/mau", "auth", as_of=as_of, days=days)
    why = ("" if audit else " (auth.audit_log_entries " + ("is not readable by this role" if src["has_audit_log"]
                                                            else "does not exist here")
           + ": sign-ins only, token refreshes not counted)")
    df.attrs["source"] = (f"auth.users.last_sign_in_at{' and auth.audit_log_entries' if audit else ''}, "
                          f"{days} days{why}")
    return df
