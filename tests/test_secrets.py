"""Secrets at the source (query texts redacted before they are stored, shown or recorded) and the report files'
last-resort net, which only replaces whole tokens and never corrupts a report."""
from __future__ import annotations

import secrets
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, select

from faults import Faults
from opsbook import history
from opsbook.config.file import from_dict
from opsbook.core.redact import SecretLeak, redact_sql, scrub_files, scrub_report
from opsbook.run import runner
from opsbook.run.runner import run_runbook

SHORT = ("table", "select", "demo", "ok")

REDACTED = [
    ("CREATE ROLE app LOGIN PASSWORD 'hunter2'", "CREATE ROLE app LOGIN PASSWORD '***'"),
    ("ALTER ROLE app WITH ENCRYPTED PASSWORD 'it''s' VALID UNTIL 'infinity'",
     "ALTER ROLE app WITH ENCRYPTED PASSWORD '***' VALID UNTIL 'infinity'"),
    ("alter user app password E'back\\'slash'", "alter user app password '***'"),
    ("create role x PaSsWoRd 'mixed'", "create role x PaSsWoRd '***'"),
    ("CREATE ROLE x PASSWORD $t$dollar$t$ LOGIN", "CREATE ROLE x PASSWORD $$***$$ LOGIN"),
    ("ALTER ROLE x PASSWORD 'cut off by track_activity_query_si", "ALTER ROLE x PASSWORD '***'"),
    ("CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', password 'p''q')",
     "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', password '***')"),
    ("ALTER USER MAPPING FOR app SERVER s OPTIONS (SET password 'n', ADD sslpassword 'k')",
     "ALTER USER MAPPING FOR app SERVER s OPTIONS (SET password '***', ADD sslpassword '***')"),
    ("SELECT dblink_connect('c', 'host=db port=5432 password=plain user=u')",
     "SELECT dblink_connect('c', 'host=db port=5432 password=*** user=u')"),
    ("SELECT dblink_connect('c', 'host=db password=''a b'' user=u')",
     "SELECT dblink_connect('c', 'host=db password=''***'' user=u')"),
    ("SELECT * FROM dblink('postgresql://u:urlpw@db/x', 'select 1')",
     "SELECT * FROM dblink('postgresql://u:***@db/x', 'select 1')"),
    ("CREATE SUBSCRIPTION s CONNECTION 'host=p password=subpw dbname=x' PUBLICATION p",
     "CREATE SUBSCRIPTION s CONNECTION 'host=p password=*** dbname=x' PUBLICATION p"),
]
UNTOUCHED = ["SELECT password_required FROM t WHERE a = 'x'", "ALTER SERVER s OPTIONS (password_required 'false')",
             "select * from users where name = $1", "ALTER ROLE x PASSWORD NULL", "", None,
             "UPDATE t SET note = 'password reset mail sent'"]


@pytest.mark.parametrize("raw,clean", REDACTED)
def test_password_literals_are_redacted(raw, clean):
    assert redact_sql(raw) == clean
    assert redact_sql(clean) == clean  # idempotent


@pytest.mark.parametrize("text", UNTOUCHED)
def test_other_texts_are_left_byte_for_byte(text):
    assert redact_sql(text) == text


def test_the_log_reader_uses_the_same_redaction():
    from opsbook.logs.redaction import redact_text

    assert redact_text("ALTER ROLE a PASSWORD E'x\\'y' -- password=z") == "ALTER ROLE a PASSWORD '***' -- password=***"


def test_the_net_replaces_whole_tokens_only_and_never_short_passwords():
    text = ('<tables12> x tables12.bloat y tables12 z "tables12" password=tables12 {"tables12": 1} '
            '<td class="tables12">tables12</td> ob-tables12')
    clean, found, replaced = scrub_report(text, ["tables12"])
    assert clean == ('<tables12> x tables12.bloat y *** z "***" password=*** {"tables12": 1} '
                     '<td class="tables12">***</td> ob-tables12')
    assert (found, replaced) == (5, 4)  # the one in a tag's attribute is said, not replaced
    for short in ("table", "select", "demo", "ok"):
        text = f"<{short}> {short}s.bloat {short} '{short}'"
        assert scrub_report(text, [short]) == (text, 0, 0)  # an ordinary word: neither replaced nor reported
        leaked = f"host=db password={short} user=u"
        assert scrub_report(leaked, [short]) == (leaked, 1, 0)  # a password where it stands: reported, kept


def test_a_leak_fails_loudly_in_strict_mode_and_is_said_otherwise(tmp_path, monkeypatch, capsys):
    path = tmp_path / "report.html"
    path.write_text("<p>dsn host=db password=long-enough-secret</p>")
    with pytest.raises(SecretLeak, match="report.html"):
        scrub_files(["long-enough-secret"], path)
    assert path.read_text() == "<p>dsn host=db password=***</p>"  # written before failing
    monkeypatch.setenv("OPSBOOK_STRICT", "0")
    path.write_text("<p>password=ok</p>")
    scrub_files(["ok"], path)
    assert "a password reached report.html (1 place, not redacted" in capsys.readouterr().err


def test_history_stored_before_redaction_is_redacted_on_upgrade(tmp_path):
    """A store written by schema version 1 (texts verbatim) is rewritten once by migration 2."""
    from opsbook.history.store import entities, migrate, schema_version

    engine = create_engine(f"sqlite:///{tmp_path / 'h.sqlite'}")
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(entities.insert(), [
            {"target": "t", "kind": "statement", "key": "1|r|1", "info": "ALTER ROLE a PASSWORD 'old-secret-1'"},
            {"target": "t", "kind": "statement", "key": "2|r|1", "info": "SELECT 1"}])
        conn.execute(schema_version.update().values(version=1))
    assert migrate(engine) == 2
    with engine.connect() as conn:
        infos = sorted(r.info for r in conn.execute(select(entities.c.info)))
        assert infos == ["ALTER ROLE a PASSWORD '***'", "SELECT 1"]
        assert conn.execute(select(schema_version.c.version)).scalar() == 2


def _all_text(*paths: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in paths if p.exists())


def test_password_literals_in_pg_stat_statements_reach_no_output(db, tmp_path, monkeypatch):
    """CREATE ROLE / ALTER ROLE ... PASSWORD in pg_stat_statements and pg_stat_activity, including the password
    of the very role opsbook logs in with: absent from the HTML, ipynb, sidecar and history store. Strict mode
    is on, so the file-level net would fail the run if a password got that far. Passwords `table`, `select`,
    `demo`, `ok` known to the same run leave every report file intact."""
    tag = secrets.token_hex(4)
    login_pw, other_pw, alter_pw, xact_pw = (f"{k}-{secrets.token_hex(8)}" for k in ("login", "other", "alter",
                                                                                       "xact"))
    login, other = f"ob_login_{tag}", f"ob_other_{tag}"
    db.execute("CREATE EXTENSION pg_stat_statements")
    db.execute(f"CREATE ROLE {login} LOGIN PASSWORD '{login_pw}' IN ROLE pg_monitor")
    db.execute(f"CREATE ROLE {other} PASSWORD '{other_pw}'")
    db.execute(f"ALTER ROLE {other} WITH ENCRYPTED PASSWORD '{alter_pw}'")
    db.execute(f"GRANT CONNECT ON DATABASE {db.name} TO {login}")
    port = db.server.configured_port()
    dsn = f"host=127.0.0.1 port={port} user={login} dbname={db.name}"
    targets = {"test": {"dsn": dsn}}
    for short in SHORT:  # passwords that are ordinary words, known to the run through other targets' DSNs
        monkeypatch.setenv(f"OB_PW_{short.upper()}", f"host=db.invalid user=u password={short}")
        targets[f"t_{short}"] = {"dsn_env": f"OB_PW_{short.upper()}"}
    config = from_dict({"targets": targets, "history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"}})
    monkeypatch.setenv("PGPASSWORD", login_pw)
    before: dict[str, str] = {}

    def scrub_spy(secrets_, *paths):  # the real net, with the files as the run wrote them kept for comparison
        before.update({p.name: p.read_text() for p in paths})
        return scrub_files(secrets_, *paths)

    monkeypatch.setattr(runner, "scrub_files", scrub_spy)
    lowered = {"activity.idle_in_transaction": {"warning": 1, "critical": 600},
               "queries.slow": {"warning": 0.001, "min_calls": 1, "max_findings": 50}}
    try:
        with Faults(db.conninfo) as f:
            idle = f.session("secret-xact", autocommit=False)
            idle.execute(f"ALTER ROLE {other} PASSWORD '{xact_pw}'")  # the transaction stays open, idle
            db.execute("select pg_sleep(0.05)")  # a statement with the word `select`, slow enough to be shown
            time.sleep(1.2)
            result = run_runbook("incident-triage", "test", {"thresholds": lowered}, config=config,
                                 output_dir=tmp_path / "reports")
            history.take_snapshot(config, "test")
    finally:
        db.execute(f"DROP OWNED BY {login}; DROP ROLE {login}")
        db.execute(f"DROP ROLE IF EXISTS {other}")
    assert result.sidecar["status"] == "ok", result.sidecar["error"]
    outputs = _all_text(result.html_path, result.notebook_path, result.sidecar_path)
    stored = _all_text(*tmp_path.glob("history.sqlite*"))
    for pw in (login_pw, other_pw, alter_pw, xact_pw):
        assert pw not in outputs and pw not in stored
    # the statements were there to be leaked: shown, and stored, redacted
    assert f"ROLE {other} WITH ENCRYPTED PASSWORD &#x27;***&#x27;" in result.html_path.read_text()
    assert f"ROLE {login} LOGIN PASSWORD '***'" in stored
    idle_finding = [x for x in result.sidecar["findings"] if x["check"] == "activity.idle_in_transaction"
                    and x["severity"] != "ok"]
    assert idle_finding and f"PASSWORD '***'" in outputs
    # the net found nothing to do: every file byte for byte as the run wrote it, i.e. as a run whose only
    # passwords are long and random; the words it used to corrupt are all there
    after = {p.name: p.read_text() for p in (result.html_path, result.notebook_path, result.sidecar_path)}
    assert after == before
    assert [word for word in ("<table", "select", "demo", "\"ok\"", "</table>") if word not in outputs] == []
    assert "<***>" not in outputs and "***s." not in outputs
