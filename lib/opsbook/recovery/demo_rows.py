"""The demo's accident for table-recovery: `opsbook demo` deletes known leads after backup-verification took its
dump and before table-recovery runs, so the recovery finds and writes them; the next demo puts them back first."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

TABLE = "public.leads"
COUNT = 25
# Leads nothing else points at (interactions and quotes cascade): the accident touches one table only.
PICK = (f"SELECT id FROM {TABLE} l WHERE NOT EXISTS (SELECT 1 FROM public.interactions i WHERE i.lead_id = l.id) "
        f"AND NOT EXISTS (SELECT 1 FROM public.quotes q WHERE q.lead_id = l.id) ORDER BY id LIMIT {COUNT}")


def stash_path() -> Path:
    from ..config.paths import default_home  # noqa: PLC0415

    return default_home() / "demo" / "deleted-leads.json"


def put_back(conninfo: str) -> int:
    """Insert the rows an earlier demo deleted (ON CONFLICT DO NOTHING); returns how many came back."""
    import psycopg  # noqa: PLC0415

    path = stash_path()
    if not path.exists():
        return 0
    rows = json.loads(path.read_text())["rows"]  # jsonb text as PostgreSQL wrote it: numerics keep their scale
    with psycopg.connect(conninfo, autocommit=True) as conn:
        n = conn.execute(f"INSERT INTO {TABLE} SELECT * FROM jsonb_populate_recordset(NULL::{TABLE}, %s::jsonb) "
                         "ON CONFLICT DO NOTHING", (rows,)).rowcount
    path.unlink()
    return n


def delete_known_rows(conninfo: str) -> list[int]:
    """Delete COUNT seeded leads, keeping them (0600) so the next demo can put them back; returns their ids."""
    import psycopg  # noqa: PLC0415

    path = stash_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with psycopg.connect(conninfo, autocommit=False) as conn:
        rows = conn.execute(f"SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.id), '[]')::text FROM {TABLE} l "
                            f"WHERE id IN ({PICK})").fetchone()[0]
        ids = [r["id"] for r in json.loads(rows)]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"table": TABLE, "ids": ids, "rows": rows}, f)
        conn.execute(f"DELETE FROM {TABLE} WHERE id = ANY(%s)", (ids,))
        conn.commit()
    return ids


def deleted_note(target) -> str | None:
    """For the demo target: which rows `opsbook demo` deleted, said in the recovery report."""
    if not getattr(target, "embedded", False) or not stash_path().exists():
        return None
    ids = json.loads(stash_path().read_text()).get("ids", [])
    if not ids:
        return None
    return (f"`opsbook demo` deleted {len(ids)} leads (id {', '.join(map(str, ids[:5]))}"
            f"{', ...' if len(ids) > 5 else ''}) after backup-verification took its dump, to show this procedure; "
            "the next `opsbook demo` puts them back before its dump.")


def around(name: str, conninfo: str, progress=lambda line: None):
    """The context `opsbook demo` runs runbook `name` in: rows put back before the dump, deleted before recovery."""
    if name == "backup-verification":
        n = put_back(conninfo)
        if n:
            progress(f"put back the {n} leads the previous demo deleted, before the backup")
    elif name == "table-recovery":
        ids = delete_known_rows(conninfo)
        progress(f"deleted {len(ids)} leads (id {ids[0]} ... {ids[-1]}) after the backup: table-recovery finds them"
                 if ids else "no lead could be deleted for table-recovery to find")
    return contextlib.nullcontext()
