"""Password literals in every form PostgreSQL accepts, run for real on a logging server: what pg_stat_activity,
pg_stat_statements and the server log (stderr, csvlog, jsonlog) report of them reaches none of opsbook's outputs.
And a [history] url with a password anywhere is refused like a DSN with one."""
from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from incident import log_marker, wait_logged
from opsbook.config.file import Target, from_dict
from opsbook.database.session import connect
from opsbook.database.demo.incident import LOG_SETTINGS
from opsbook.core.redact import MASK, redact_sql

ROLE, MAPPED, SERVER, OTHER, SUB = "ob_red_role", "ob_red_mapped", "ob_red_srv", "ob_red_other", "ob_red_sub"
NOWHERE = "host=127.0.0.1 port=1"  # dblink's connections are refused at once: the texts are what matters
ACTIVITY_SIZE = 1024  # track_activity_query_size, the default: pg_stat_activity cuts query texts there
PAD = "/*" + "x" * 967 + "*/"  # puts the secret across pg_stat_activity's cut (its literal starts at 1005)

# (label, statement with {s} for its secret): each form runs on the server, so every text is PostgreSQL's own.
CORPUS = [
    ("plain", f"ALTER ROLE {ROLE} PASSWORD '{{s}}'"),
    ("block comment", f"ALTER ROLE {ROLE} PASSWORD /* x */ '{{s}}'"),
    ("line comment", f"ALTER ROLE {ROLE} PASSWORD -- x\n'{{s}}'"),
    ("no spaces", f"ALTER ROLE {ROLE} PASSWORD/**/'{{s}}'"),
    ("nested comment", f"ALTER ROLE {ROLE} PASSWORD /* a /* b */ c */ '{{s}}'"),
    ("comments everywhere", f"ALTER ROLE {ROLE} ENCRYPTED /* a */ PASSWORD /* b */ -- c\n  -- d\n'{{s}}'"),
    ("encrypted", f"ALTER ROLE {ROLE} WITH ENCRYPTED PASSWORD '{{s}}'"),
    ("mixed case", f"alter role {ROLE} PaSsWoRd '{{s}}'"),
    ("valid until", f"ALTER USER {ROLE} WITH PASSWORD '{{s}}' VALID UNTIL 'infinity'"),
    ("doubled quote", f"ALTER ROLE {ROLE} PASSWORD 'it''s-{{s}}'"),
    ("backslash", f"ALTER ROLE {ROLE} PASSWORD 'a\\{{s}}'"),
    ("E string", f"ALTER ROLE {ROLE} PASSWORD E'{{s}}\\'q'"),
    ("dollar", f"ALTER ROLE {ROLE} PASSWORD $${{s}}$$"),
    ("dollar tag", f"ALTER ROLE {ROLE} PASSWORD $pw${{s}}$pw$"),
    ("U& string", f"ALTER ROLE {ROLE} PASSWORD U&'{{s}}\\0041'"),
    ("continued literal", f"ALTER ROLE {ROLE} PASSWORD '{{s}}'\n'more'"),
    ("non-ASCII", f"ALTER ROLE {ROLE} PASSWORD /* é€ */ 'é€{{s}}'"),
    ("create role", f"CREATE ROLE {ROLE}_2 LOGIN PASSWORD '{{s}}'; DROP ROLE {ROLE}_2"),
    ("cut by pg_stat_activity", f"ALTER ROLE {ROLE} {PAD} PASSWORD '{{s}}'"),
    ("user mapping", f"CREATE USER MAPPING FOR {ROLE} SERVER {SERVER} OPTIONS (user 'u', password '{{s}}')"
                     f"; DROP USER MAPPING FOR {ROLE} SERVER {SERVER}"),
    ("quoted option", f"CREATE USER MAPPING FOR {ROLE} SERVER {SERVER} OPTIONS (\"password\" '{{s}}')"
                      f"; DROP USER MAPPING FOR {ROLE} SERVER {SERVER}"),
    ("quoted option, comment", f"CREATE USER MAPPING FOR {ROLE} SERVER {SERVER} OPTIONS (user 'u', \"password\" "
                               f"/* c */ '{{s}}'); DROP USER MAPPING FOR {ROLE} SERVER {SERVER}"),
    ("alter mapping", f"ALTER USER MAPPING FOR {MAPPED} SERVER {SERVER} OPTIONS (SET password '{{s}}')"),
    ("sslpassword", f"ALTER USER MAPPING FOR {MAPPED} SERVER {SERVER} OPTIONS (SET sslpassword '{{s}}')"),
    ("quoted sslpassword", f"ALTER USER MAPPING FOR {MAPPED} SERVER {SERVER} OPTIONS (SET \"sslpassword\" '{{s}}')"),
    ("create server", f"CREATE SERVER {OTHER}_2 FOREIGN DATA WRAPPER ob_red_fdw OPTIONS (host 'h', password "
                      f"'{{s}}'); DROP SERVER {OTHER}_2"),
    ("alter server", f"ALTER SERVER {OTHER} OPTIONS (SET \"password\" '{{s}}')"),
    ("dblink_connect", f"SELECT dblink_connect('c', '{NOWHERE} password={{s}} user=u')"),
    ("dblink_connect quoted", f"SELECT dblink_connect('c', '{NOWHERE} password=''{{s}} x'' user=u')"),
    ("dblink_connect spaced", f"SELECT dblink_connect('c', '{NOWHERE} password = ''{{s}}''')"),
    ("dblink_connect E", f"SELECT dblink_connect('c', E'{NOWHERE} password=\\'{{s}}\\' user=u')"),
    ("dblink_connect dollar", f"SELECT dblink_connect('c', $${NOWHERE} sslpassword={{s}}$$)"),
    ("dblink URL", "SELECT * FROM dblink('postgresql://u:{s}@127.0.0.1:1/x', 'select 1') AS t(a int)"),
    ("dblink URL query", "SELECT * FROM dblink('postgresql://u@127.0.0.1:1/x?sslmode=disable&PASSWORD={s}', "
                         "'select 1') AS t(a int)"),
    ("subscription", f"CREATE SUBSCRIPTION {SUB}_2 CONNECTION 'host=127.0.0.1 password={{s}} dbname=x' "
                     f"PUBLICATION p WITH (connect = false, slot_name = NONE); DROP SUBSCRIPTION {SUB}_2"),
    ("subscription URL", f"ALTER SUBSCRIPTION {SUB} CONNECTION 'postgresql://u:{{s}}@127.0.0.1/x'"),
    ("subscription quoted", f"ALTER SUBSCRIPTION {SUB} CONNECTION 'password=''{{s}}'' host=127.0.0.1'"),
    ("DO block", f"DO $$BEGIN EXECUTE 'ALTER ROLE {ROLE} PASSWORD ''{{s}}'''; END$$"),
    ("crypt", "UPDATE ob_red_users SET encrypted_password = crypt('{s}', gen_salt('bf')) WHERE id = 1"),
    ("comment conninfo", "SELECT 1 /* dsn host=h password={s} */"),
    ("comment URL", "SELECT 1 -- postgresql://u:{s}@h/db\n"),
    ("failing", "ALTER ROLE ob_red_missing PASSWORD /* c */ '{s}'"),
]
FAILING = {"failing", *(label for label, form in CORPUS if "dblink" in form)}  # errors, logged with their STATEMENT
SETUP = [
    f"CREATE ROLE {ROLE}", f"CREATE ROLE {MAPPED}", "CREATE EXTENSION dblink", "CREATE EXTENSION postgres_fdw",
    f"CREATE SERVER {SERVER} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '1', dbname 'x')",
    f"CREATE USER MAPPING FOR {MAPPED} SERVER {SERVER} OPTIONS (user 'u', password 'init', sslpassword 'init')",
    # a wrapper without a validator takes any option: a password on the server itself, as some wrappers have
    "CREATE FOREIGN DATA WRAPPER ob_red_fdw",
    f"CREATE SERVER {OTHER} FOREIGN DATA WRAPPER ob_red_fdw OPTIONS (password 'init')",
    f"CREATE SUBSCRIPTION {SUB} CONNECTION 'host=127.0.0.1 dbname=x' PUBLICATION p "
    "WITH (connect = false, slot_name = NONE)",
    # pgcrypto's crypt() and gen_salt() (not in the embedded build), as Supabase guides reset a user's password
    "CREATE FUNCTION crypt(text, text) RETURNS text LANGUAGE sql AS $$SELECT md5($1 || $2)$$",
    "CREATE FUNCTION gen_salt(text) RETURNS text LANGUAGE sql AS $$SELECT $1$$",
    "CREATE TABLE ob_red_users (id int PRIMARY KEY, encrypted_password text)",
    "INSERT INTO ob_red_users VALUES (1, '')",
    "CREATE EXTENSION pg_stat_statements",
]


def _secret(i: int) -> str:
    return f"Sec{i:02d}{secrets.token_hex(10)}"


@pytest.fixture(scope="module")
def corpus_server(tmp_path_factory):
    """A server of its own that logs every statement in all three formats, with pg_stat_statements loaded."""
    from conftest import _server  # noqa: PLC0415

    server = _server(tmp_path_factory, "redaction", **LOG_SETTINGS, log_statement="'all'",
                     shared_preload_libraries="pg_stat_statements")
    yield server
    server.stop()


def test_every_form_is_redacted_and_stays_so():
    for i, (label, form) in enumerate(CORPUS):
        secret = _secret(i)
        sql = form.format(s=secret)
        clean = redact_sql(sql)
        assert secret[:10] not in clean, (label, clean)
        assert redact_sql(clean) == clean, label  # idempotent
        assert MASK in clean, (label, clean)


def test_redaction_keeps_everything_else_byte_for_byte():
    sql = "ALTER ROLE r PASSWORD /* é */ 'x'  -- keep\nVALID UNTIL 'infinity'"
    assert redact_sql(sql) == "ALTER ROLE r PASSWORD /* é */ '***'  -- keep\nVALID UNTIL 'infinity'"
    for text in ("SELECT password_required, 'password reset' FROM t /* password */",
                 "ALTER SERVER s OPTIONS (password_required 'false')", "SELECT '://x' AS \"password\""):
        assert redact_sql(text) == text


def test_cut_off_and_unlexable_texts_are_redacted_to_their_end():
    for cut in ("ALTER ROLE r PASSWORD 'Secret-cut", "ALTER ROLE r PASSWORD /* c */ $t$Secret-cut",
                "ALTER ROLE r PASSWORD E'Secret-cut\\'", "ALTER ROLE r PASSWORD U&'Secret-cut",
                "SELECT dblink_connect('host=h password=''Secret-cut",
                "LOG:  statement: SELECT 1a, 2b, \"id\" , x PASSWORD 'Secret-cut",
                " 1a" * 40 + " PASSWORD 'Secret-cut'"):
        assert "Secret" not in redact_sql(cut), cut
    assert redact_sql("x\0y PASSWORD 'Secret-after-nul'") == "x\0y PASSWORD '***'"
    # a server with standard_conforming_strings off reads 'a\' , Secret' as one literal: so is it masked
    assert "Secret" not in redact_sql("ALTER ROLE r PASSWORD 'a\\' , Secret-scs-off'")


def test_sql_quoted_by_an_exception_or_a_message_is_read_as_sql_too():
    """An exception's repr or a message puts the statement inside double quotes: to the lexer, an identifier."""
    for text in (str(KeyError("ALTER ROLE app PASSWORD /* c */ 'Secret-1'")),
                 'psycopg.errors.X: "ALTER USER MAPPING FOR a SERVER s OPTIONS (""password"" \'Secret-2\')"',
                 'ERROR: x at or near "ALTER ROLE app PASSWORD \'Secret-3'):
        clean = redact_sql(text)
        assert "Secret" not in clean and redact_sql(clean) == clean, clean
    assert redact_sql('OPTIONS ("password" \'x\', "user" \'u\')') == 'OPTIONS ("password" \'***\', "user" \'u\')'


def test_hostile_texts_cost_linear_time():
    """pglast maps byte offsets to characters in time quadratic in a text's non-ASCII characters (40 KB of "é "
    took 11 s); a log line any database user can write must not stall the log reader."""
    for text in ("é " * 100_000 + "PASSWORD 'Secret-x'", "a." * 500_000 + "password=Secret-y",
                 "\udcff PASSWORD 'Secret-z' " * 2000):
        t0 = time.perf_counter()
        clean = redact_sql(text)
        assert time.perf_counter() - t0 < 2, len(text)
        assert "Secret" not in clean


def test_recovery_tool_output_uses_the_same_rules():
    """pg_restore's quoted error, as a verification shows it: the one redaction rule, nothing of its own."""
    from opsbook.recovery import archive  # noqa: PLC0415

    text = ("pg_restore: error: could not execute query: ... Command was: CREATE USER MAPPING FOR app SERVER s "
            "OPTIONS (\"password\" /* c */ 'Secret-1'); dsn postgresql://u:Secret-2@db/x password=Secret-3,x")
    shown = archive._last_error(text)
    assert "Secret" not in shown and shown == redact_sql(text.replace("pg_restore: error: ", ""))


def test_the_corpus_reaches_no_output_of_a_real_server(corpus_server, tmp_path):
    """Each form runs on a real server that logs every statement. The texts its pg_stat_activity,
    pg_stat_statements and logs hold carry the secrets; what opsbook makes of them (a Session's DataFrames, the
    history store, the log reader's events in each format) carries none."""
    from opsbook import history  # noqa: PLC0415
    from opsbook.logs import iter_events  # noqa: PLC0415

    tag = secrets.token_hex(3)
    dbname = f"red_{tag}"
    admin = corpus_server.conninfo()
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {dbname}")
    conninfo = corpus_server.conninfo(dbname=dbname)
    target = Target("corpus", dsn=conninfo)
    config = from_dict({"targets": {"corpus": {"dsn": conninfo}},
                        "history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"}})
    with psycopg.connect(conninfo, autocommit=True) as c:
        for sql in SETUP:
            c.execute(sql)
    session = connect(target)
    raw_activity, shown_activity, all_secrets = {}, {}, {}
    try:
        with psycopg.connect(conninfo, autocommit=True) as runner, psycopg.connect(conninfo) as monitor:
            pid = runner.info.backend_pid
            for i, (label, form) in enumerate(CORPUS):
                secret = all_secrets[label] = _secret(i)
                try:
                    runner.execute(form.format(s=secret).encode())  # bytes: sent as written, no client parsing
                    assert label not in FAILING, label
                except psycopg.Error as e:
                    assert label in FAILING, (label, e)
                raw_activity[label] = monitor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s",
                                                      (pid,)).fetchone()[0]
                monitor.rollback()
                frame = session.query("SELECT pid, query FROM pg_catalog.pg_stat_activity WHERE pid = :pid", pid=pid)
                shown_activity[label] = frame["query"].iloc[0]
        with psycopg.connect(conninfo) as c:
            statements_raw = [r[0] for r in c.execute("SELECT query FROM public.pg_stat_statements").fetchall()]
        statements_shown = session.query("SELECT query FROM public.pg_stat_statements")["query"].tolist()
        history.take_snapshot(config, "corpus")
        log_marker(conninfo, f"ob-redaction-corpus-{tag}")
        wait_logged(corpus_server.data_dir / "log", f"ob-redaction-corpus-{tag}")
    finally:
        session.close()
        with psycopg.connect(conninfo, autocommit=True) as c:
            c.execute(f"DROP SUBSCRIPTION IF EXISTS {SUB}")  # else the database cannot be dropped
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE {dbname} WITH (FORCE)")
            for role in (ROLE, MAPPED):
                c.execute(f"DROP ROLE IF EXISTS {role}")

    # the server did hold the secrets: verbatim in pg_stat_activity (cut to 1 KB), in the utility statements of
    # pg_stat_statements, in every log format
    for label, secret in all_secrets.items():
        assert secret[:10] in raw_activity[label], (label, raw_activity[label])
    assert len(raw_activity["cut by pg_stat_activity"].encode()) < ACTIVITY_SIZE
    assert all_secrets["cut by pg_stat_activity"] not in raw_activity["cut by pg_stat_activity"]
    in_statements = [label for label, s in all_secrets.items() if any(s[:10] in q for q in statements_raw)]
    assert len(in_statements) >= 20, in_statements
    log_dir = corpus_server.data_dir / "log"
    logs = {ext: (log_dir / f"postgresql.{ext}").read_text(errors="replace") for ext in ("log", "csv", "json")}
    for secret in all_secrets.values():
        assert all(secret[:10] in text for text in logs.values())

    # what opsbook makes of them holds none
    prefix = LOG_SETTINGS["log_line_prefix"].strip("'")
    events = {ext: [e for e in iter_events(log_dir / f"postgresql.{ext}", prefix=prefix if ext == "log" else None)
                    if dbname == e.database] for ext in logs}
    outputs = {
        "pg_stat_activity (redact_sql)": "\n".join(redact_sql(q) for q in raw_activity.values()),
        "pg_stat_activity (Session)": "\n".join(shown_activity.values()),
        "pg_stat_statements (redact_sql)": "\n".join(redact_sql(q) for q in statements_raw),
        "pg_stat_statements (Session)": "\n".join(statements_shown),
        "history store": "\n".join(p.read_bytes().decode("utf-8", "replace") for p in tmp_path.glob("history*")),
        **{f"log events ({ext})": "\n".join(_event_text(e) for e in evs) for ext, evs in events.items()},
    }
    leaks = [(where, label) for where, text in outputs.items() for label, s in all_secrets.items() if s[:10] in text]
    assert not leaks, leaks
    for ext, evs in events.items():
        assert sum("***" in _event_text(e) for e in evs) >= len(CORPUS), ext  # the statements were read


def _event_text(e) -> str:
    return "\n".join(str(v) for v in (e.message, e.detail, e.hint, e.context, e.statement, *e.statements) if v)


# ---------------------------------------------------------------------------------------------- [history] url
OPSBOOK = Path(sys.executable).parent / "opsbook"


@pytest.mark.parametrize("url,key", [
    ("postgresql+psycopg://ops:Hunter2-secret@db/history", "user info"),
    ("postgresql+psycopg://ops@db/history?password=Hunter2-secret", "query parameter 'password'"),
    ("postgresql+psycopg://ops@db/history?sslmode=require&PASSWORD=Hunter2-secret", "parameter 'PASSWORD'"),
    ("postgresql+psycopg://ops@db/history?SslPassword=Hunter2-secret", "query parameter 'SslPassword'"),
    ("postgresql+psycopg://ops@db/history?pass%77ord=Hunter2-secret", "query parameter 'password'"),
    ("postgresql+psycopg://ops:Hunter2-secret/x@db/history", "user info"),  # SQLAlchemy's reading of user info
])
def test_a_history_url_with_a_password_anywhere_is_refused(tmp_path, url, key):
    config = tmp_path / "opsbook.toml"
    config.write_text(f'[targets.prod]\nservice = "prod"\n\n[history]\nurl = "{url}"\n')
    p = subprocess.run([str(OPSBOOK), "--config", str(config), "snapshot", "--all"], capture_output=True,
                       text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == "" and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr
    assert "[history] url has a password" in p.stderr and key in p.stderr, p.stderr
    assert "Hunter2" not in p.stderr


def test_a_history_url_without_a_password_is_accepted(tmp_path):
    for url in ("postgresql+psycopg://ops@db/history?sslmode=require&passfile=/x/pgpass&password=",
                "postgresql+psycopg://ops:@db/history", f"sqlite:///{tmp_path / 'h.sqlite'}"):
        assert from_dict({"history": {"url": url}}).history_url
