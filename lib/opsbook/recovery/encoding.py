"""Encodings a recovery keeps: the scratch database takes the dump's, and query text reaches a SQL_ASCII server as
the bytes its names are made of."""
from __future__ import annotations

# The encodings a PostgreSQL database may have (src/include/mb/pg_wchar.h, PG_VALID_BE_ENCODING), by the names
# pg_dump writes in `SET client_encoding`. A dump's encoding comes from an untrusted file: only these are used.
SERVER_ENCODINGS = frozenset(
    ["SQL_ASCII", "UTF8", "EUC_JP", "EUC_CN", "EUC_KR", "EUC_TW", "EUC_JIS_2004", "MULE_INTERNAL", "KOI8R", "KOI8U"]
    + [f"LATIN{n}" for n in range(1, 11)] + [f"ISO_8859_{n}" for n in range(5, 9)]
    + [f"WIN{n}" for n in (866, 874, 1250, 1251, 1252, 1253, 1254, 1255, 1256, 1257, 1258)])
DEFAULT = "UTF8"  # the throwaway cluster's own (initdb -E UTF8 --locale=C)


def scratch_encoding(dump_encoding: str | None) -> str | None:
    """The encoding the scratch database must have so the dump restores byte for byte and names read back as they
    read live (a SQL_ASCII dump holds bytes no UTF8 database accepts); None: the default serves."""
    name = (dump_encoding or "").strip().upper()
    return name if name in SERVER_ENCODINGS and name != DEFAULT else None


def create_options(encoding: str, server_version_num: int) -> str:
    """CREATE DATABASE options for a database in `encoding` (the C locale goes with every encoding; PostgreSQL 15+
    may default to ICU, which does not take SQL_ASCII)."""
    if encoding not in SERVER_ENCODINGS:
        raise ValueError(f"not a database encoding: {encoding!r}")
    provider = " LOCALE_PROVIDER libc" if server_version_num >= 150000 else ""
    return f" ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C'{provider}"


def sql(conn, text: str) -> str | bytes:
    """`text` as `conn` must send it. psycopg encodes query text to a SQL_ASCII server as ASCII, so a name that is
    not (a table `заказы`) cannot be sent as str; opsbook's sessions read such names as UTF-8, and their UTF-8
    bytes are the name's own."""
    return text.encode("utf-8") if conn.info.encoding == "ascii" else text
