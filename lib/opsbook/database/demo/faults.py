"""The deliberate problems that need statements of their own: statistics, an invalid index, a slot, dead tuples."""
from __future__ import annotations

import psycopg
from psycopg import errors, sql

NEVER_ANALYZED = "automation_jobs"
INVALID_INDEX = "quotes_quote_number_key"
SLOT = "analytics_replica"
BLOATED = "notifications"


def analyze(conn: psycopg.Connection) -> None:
    """VACUUM ANALYZE every table of the app's schemas except the one that must look never analyzed (vacuumed now,
    the fresh tables spare a burst of autovacuum work, and its WAL, right after the build)."""
    tables = conn.execute("SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c "
                          "JOIN pg_namespace n ON n.oid = c.relnamespace "
                          "WHERE c.relkind = 'r' AND n.nspname IN ('public', 'auth', 'storage') "
                          "AND NOT (n.nspname = 'public' AND c.relname = %s) ORDER BY 1", (NEVER_ANALYZED,)).fetchall()
    conn.execute("VACUUM (ANALYZE) " + ", ".join(t for (t,) in tables))


def inject(conn: psycopg.Connection) -> str:
    """Make the problems in this order: the slot first, so that it holds the WAL of what follows."""
    done = [replication_slot(conn), invalid_index(conn), dead_tuples(conn)]
    return ", ".join(d for d in done if d)


def replication_slot(conn: psycopg.Connection) -> str:
    """An inactive physical slot that reserves WAL from now on; a rebuild makes it anew (it is cluster-wide, and
    keeping the old one would hold the WAL of every build since the first)."""
    active = conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (SLOT,)).fetchone()
    if active and active[0]:
        return f"slot {SLOT} in use, kept"
    if active:
        conn.execute("SELECT pg_drop_replication_slot(%s)", (SLOT,))
    try:
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (SLOT,))
    except errors.DuplicateObject:
        return f"slot {SLOT} kept"  # a concurrent build on another database of this cluster made it
    except (errors.ObjectNotInPrerequisiteState, errors.ConfigurationLimitExceeded) as e:
        return f"slot skipped ({e.diag.message_primary})"  # wal_level minimal or max_replication_slots = 0
    return f"slot {SLOT} created"


def invalid_index(conn: psycopg.Connection) -> str:
    """A unique index built CONCURRENTLY over duplicate quote numbers fails and stays behind, invalid."""
    try:
        conn.execute(sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON quotes (quote_number)").format(
            sql.Identifier(INVALID_INDEX)))
    except errors.UniqueViolation:
        return f"invalid index {INVALID_INDEX}"
    raise RuntimeError(f"{INVALID_INDEX} was built valid: the demo's quote numbers lost their duplicates")


def dead_tuples(conn: psycopg.Connection) -> str:
    """A migration renamed status 'sent' to 'delivered', then a backfill marked old pushes read, each in one
    statement; autovacuum is off on the table, so nearly two dead versions per row stay behind."""
    table = sql.Identifier(BLOATED)
    dead = conn.execute(sql.SQL("UPDATE {} SET status = 'delivered', updated_at = now() WHERE status = 'sent'")
                        .format(table)).rowcount
    dead += conn.execute(sql.SQL("UPDATE {} SET read_at = created_at + interval '3 days', updated_at = now() "
                                 "WHERE read_at IS NULL AND created_at < now() - interval '3 days'")
                         .format(table)).rowcount
    return f"{dead:,} dead tuples in {BLOATED}"
