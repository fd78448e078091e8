"""The pure parts of backup verification: judges on hand-made data, the restore-time model, formats, tool choice."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from opsbook.checks import backup as checks
from opsbook.recovery import archive, restore, rto, tools


def _age(hours: float):
    now = dt.datetime.now(dt.timezone.utc)
    return pd.DataFrame([{"path": "/b/x.dump", "taken_at": now - dt.timedelta(hours=hours),
                          "taken_from": "the archive's header", "age_hours": hours}])


@pytest.mark.parametrize("hours, severity", [(1, "ok"), (21.5, "ok"), (21.7, "warning"), (24.0, "warning"),
                                             (24.1, "critical"), (400, "critical")])
def test_backup_age_against_the_rpo(hours, severity):
    assert checks.judge_age(_age(hours))[0].severity.value == severity


def test_backup_age_rpo_is_a_threshold():
    assert checks.judge_age(_age(13), rpo_hours=12)[0].severity.value == "critical"


def _timing(measured_s: float, scaling_s: float, restored_bytes: int, live_bytes: int):
    model = rto.RestoreModel(measured_s, scaling_s, restored_bytes)
    df = rto.predictions(model, live_bytes, 240)
    df.attrs.update(measured_s=measured_s, scaling_s=scaling_s, fixed_s=model.fixed_s, restored_bytes=restored_bytes,
                    live_bytes=live_bytes, predicted_live_s=model.predict_s(live_bytes))
    return model, df


def test_restore_model_scales_only_the_data_work():
    model, df = _timing(10.0, 8.0, 100 * 2**20, 1000 * 2**20)
    assert model.fixed_s == pytest.approx(2.0)
    assert model.predict_s(1000 * 2**20) == pytest.approx(2.0 + 80.0)
    assert df.set_index("size").loc["10 GB", "predicted_s"] == pytest.approx(2.0 + 8.0 * 102.4)


@pytest.mark.parametrize("scaling_s, severity", [(30, "ok"), (4000, "warning"), (20000, "critical")])
def test_restore_time_against_the_database_budget_and_the_rto(scaling_s, severity):
    _, df = _timing(scaling_s + 1, scaling_s, 2**30, 2**30)
    assert checks.judge_restore_time(df)[0].severity.value == severity


def test_restore_errors_are_a_warning_with_the_commonest_quoted_and_a_drop_failure_is_critical():
    df = pd.DataFrame([{"message": 'role "anon" does not exist', "context": "TOC 1"}] * 3
                      + [{"message": 'extension "pgsodium" is not available', "context": "TOC 2"}])
    df.attrs.update(scratch="opsbook_verify_20261121_000000_abcd", restore_server="x", duration_s=1.0, command="c",
                    dropped=True)
    f = checks.judge_restore(df)
    assert f[0].severity.value == "warning" and '3x role "anon" does not exist' in f[0].detail
    df.attrs.update(dropped=False, drop_error="connection lost")
    assert [x.severity.value for x in checks.judge_restore(df)] == ["warning", "critical"]


def test_completeness_missing_objects_are_critical():
    tables = pd.DataFrame([{"schema": "public", "table": "leads", "live_rows": 5, "restored_rows": 5, "diff_rows": 0,
                            "exact": True, "status": "same", "error": None}])
    objects = pd.DataFrame([{"kind": "policy", "schema": "public", "name": "leads.p", "live": True, "restored": False,
                             "status": "missing from restore", "definition": ""}])
    tables.attrs["objects"] = objects
    f = checks.judge_completeness(tables)
    assert f[0].severity.value == "critical" and f[0].objects == ["policy public.leads.p"]


def test_scratch_names_are_unmistakable():
    name = restore.scratch_name("verify")
    assert restore.is_scratch_name(name) and name.startswith("opsbook_verify_")
    assert not restore.is_scratch_name("postgres") and not restore.is_scratch_name("opsbook_verify_prod")


def test_format_is_told_by_content_not_name(tmp_path):
    (tmp_path / "a.dump").write_text("hello")
    (tmp_path / "b.sql").write_text("--\n-- PostgreSQL database dump\n--\n")
    (tmp_path / "c.bin").write_bytes(b"PGDMP\x01\x10\x00")
    assert archive.describe(tmp_path / "a.dump").format is None
    assert archive.detect_format(tmp_path / "b.sql") == "plain"
    assert archive.detect_format(tmp_path / "c.bin") == "custom"
    assert [p.name for p in archive.candidates(tmp_path)] == ["a.dump", "b.sql"]


def test_toc_lines_split_into_kind_schema_name():
    assert archive.split_toc_desc("TABLE DATA public leads postgres") == {
        "kind": "TABLE DATA", "schema": "public", "name": "leads", "owner": "postgres"}
    assert archive.split_toc_desc("FK CONSTRAINT public notes notes_lead_id_fkey postgres")["kind"] == "FK CONSTRAINT"


def test_ssl_need_and_the_password_never_on_the_command_line():
    assert tools.needs_ssl("postgresql://u@db.abc.supabase.co:5432/postgres") == (False, True)
    assert tools.needs_ssl("host=/tmp port=5432 sslmode=require") == (True, True)
    assert tools.needs_ssl("host=localhost") == (False, False)
    dsn, env = tools.libpq_args("postgresql://u:s3cret@h:5432/db?sslmode=require", "x")
    assert "s3cret" not in dsn and env["PGPASSWORD"] == "s3cret" and "sslmode=require" in dsn


def test_an_ssl_target_gets_a_client_with_ssl_or_a_clear_refusal():
    if not tools.Path("/usr/lib/postgresql/15/bin/pg_dump").exists():
        pytest.skip("PostgreSQL 15 client not present")
    assert tools.probe("/usr/lib/postgresql/15/bin", "system") is not None
    remote = "host=db.abc.supabase.co port=5432 user=postgres sslmode=require"
    chosen = tools.choose(150008, conninfo=remote)
    assert chosen.ssl is True and chosen.major == 15  # the embedded 18 has no SSL
    assert tools.choose(150008, conninfo="host=/tmp").bindir == tools.Path("/usr/lib/postgresql/15/bin")  # its own
    assert tools.choose(180006, conninfo="host=/tmp").source == "embedded"
    if not any(c.ssl and c.major >= 18 for c in tools.candidates()):
        with pytest.raises(tools.ClientError) as e:
            tools.choose(180000, conninfo=remote)
        assert e.value.kind == "no_ssl" and "with SSL" in str(e.value)


def test_pg_restore_errors_are_quoted_without_any_password_form():
    text = ("pg_restore: error: could not execute query: Command was: CREATE USER MAPPING FOR app SERVER s OPTIONS "
            "(user 'u', password 'p''q'); dsn postgresql://ops:url-secret@db/x; password=kv-secret "
            "sslpassword=key-secret\n")
    clean = archive._last_error("pg_restore: warning: x\n" + text)
    assert clean.startswith("could not execute query")
    assert not any(s in clean for s in ("p''q", "url-secret", "kv-secret", "key-secret")) and "***" in clean


def test_only_a_server_marked_scratch_and_never_the_live_one_is_a_restore_target():
    from opsbook.config.file import from_dict
    from opsbook.core.errors import OpsbookError
    from opsbook.recovery.scratch import restore_target_server

    cfg = from_dict({"targets": {"prod": {"dsn": "host=db.x port=5432 user=u dbname=app"},
                                 "prod_admin": {"dsn": "host=db.x user=admin dbname=postgres", "scratch": True},
                                 "spare": {"dsn": "host=db.y user=u dbname=postgres", "scratch": True},
                                 "other": {"dsn": "host=db.z user=u dbname=postgres"}}})
    with pytest.raises(OpsbookError, match="server of the live target"):
        restore_target_server(cfg, "prod_admin", live=cfg.target("prod"))
    for unmarked in ("prod", "other"):
        with pytest.raises(OpsbookError, match="not marked `scratch = true`"):
            restore_target_server(cfg, unmarked, live=cfg.target("prod"))
    assert restore_target_server(cfg, "spare", live=cfg.target("prod")).name == "spare"
