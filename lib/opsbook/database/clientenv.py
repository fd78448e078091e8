"""The environment of a PostgreSQL client or server tool opsbook starts, and where such tools are installed."""
from __future__ import annotations

import os
import re

# Where PostgreSQL client tools live besides PATH: Debian/Ubuntu, RHEL (PGDG), Homebrew.
SYSTEM_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/libpq/bin",
                "/usr/local/opt/libpq/bin", "/opt/homebrew/opt/postgresql@*/bin")

_HOLDS_SECRET = re.compile(r"(ssl)?password\s*=\s*\S|://[^/@\s:]*:[^@\s]+@", re.I)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a client tool: ours, less any variable holding a DSN with a secret (a target's
    dsn_env): a child needs none of them, and /proc/<pid>/environ would show them. (A PGPASSWORD you set
    yourself stays: it may be how the tool logs in.)"""
    env = {k: v for k, v in os.environ.items() if not _HOLDS_SECRET.search(v)}
    return {**env, "LC_ALL": "C", **extra}


def scratch_env(**extra: str) -> dict[str, str]:
    """The environment for a tool talking to a throwaway cluster over its socket: child_env() without any PG*
    variable. PGSSLMODE=verify-full, PGSERVICE, PGOPTIONS, PGREQUIREAUTH... are the user's settings for their own
    servers; applied to a local socket they only make the restore fail (a client built without SSL rejects
    sslmode=require outright)."""
    env = {k: v for k, v in child_env().items() if not k.startswith("PG")}
    return {**env, **extra}
