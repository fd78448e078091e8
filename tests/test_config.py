"""opsbook.toml: targets, secrets rules, threshold layering; every problem is one clear line."""
from __future__ import annotations

import pytest

from opsbook import checks
from opsbook.config.file import from_dict, load, redact
from opsbook.core.errors import ConfigError, ParameterError, UnknownTarget


def write(tmp_path, text):
    p = tmp_path / "opsbook.toml"
    p.write_text(text)
    return p


def test_builtin_config_has_only_demo():
    cfg = load()
    assert list(cfg.targets) == ["demo"] and cfg.target("demo").embedded


def test_local_file_then_env_then_explicit(tmp_path, monkeypatch):
    write(tmp_path, '[targets.local]\ndsn = "host=/tmp dbname=a"\n')
    assert "local" in load().targets
    other = tmp_path / "other.toml"
    other.write_text('[targets.envtarget]\nservice = "staging"\n')
    monkeypatch.setenv("OPSBOOK_CONFIG", str(other))
    assert "envtarget" in load().targets and "local" not in load().targets
    assert "local" in load(tmp_path / "opsbook.toml").targets


@pytest.mark.parametrize("text, message", [
    ("[targets.prod\ndsn='x'", "not valid TOML"),
    ('[targets.prod]\ndsn = "postgresql://u:hunter2@h/db"\n', "password in its dsn"),
    ('[targets.prod]\ndsn = "x"\nservice = "y"\n', "give exactly one"),
    ('[targets.prod]\nplan = "pro"\n', "needs one of dsn, dsn_env or service"),
    ('[targets.prod]\ndsn = 5\n', "must be a string"),
    ('targets = 3\n', "must be a table"),
    ('[thresholds]\n"activity.long_running" = 5\n', "keyed by check id"),
])
def test_malformed_config_is_one_line(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as e:
        load(write(tmp_path, text))
    assert "\n" not in str(e.value) and "hunter2" not in str(e.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "absent.toml")


def test_unknown_target_names_the_known_ones():
    with pytest.raises(UnknownTarget, match="known: demo, prod"):
        from_dict({"targets": {"prod": {"service": "p"}}}).target("nope")


def test_dsn_env_is_read_at_connect_time_and_displayed_without_password(monkeypatch):
    t = from_dict({"targets": {"prod": {"dsn_env": "PROD_DSN"}}}).target("prod")
    with pytest.raises(ConfigError, match="PROD_DSN is not set"):
        t.conninfo()
    monkeypatch.setenv("PROD_DSN", "postgresql://ops:s3cret-pw@db.example.com:5432/postgres?sslmode=require")
    assert t.conninfo().endswith("sslmode=require")
    assert "s3cret-pw" not in t.display() and "***" in t.display()


def test_redact_keeps_shape_and_hides_password():
    assert redact("host=h user=u password=pw dbname=d") == "host=h user=u password=*** dbname=d"
    assert redact("postgresql://u:pw@h:5/d?sslmode=require") == "postgresql://u:***@h:5/d?sslmode=require"


def test_threshold_layers_default_config_target_parameter():
    cfg = from_dict({
        "thresholds": {"activity.long_running": {"warning": 100, "critical": 1000}},
        "targets": {"prod": {"service": "p", "thresholds": {"activity.long_running": {"warning": 50}}}},
    })
    check = checks.get("activity.long_running")
    t = cfg.target("prod")
    assert check.resolve_thresholds() == {"warning": 300, "critical": 1800}
    assert check.resolve_thresholds(cfg.thresholds_for(check.id)) == {"warning": 100, "critical": 1000}
    assert check.resolve_thresholds(cfg.thresholds_for(check.id, t)) == {"warning": 50, "critical": 1000}
    assert check.resolve_thresholds(cfg.thresholds_for(check.id, t), {"critical": 60}) == {"warning": 50,
                                                                                           "critical": 60}


def test_threshold_typos_and_types_are_usage_errors():
    check = checks.get("activity.long_running")
    with pytest.raises(ParameterError, match="no threshold 'warn'"):
        check.resolve_thresholds({"warn": 5})
    with pytest.raises(ParameterError, match="must be a number"):
        check.resolve_thresholds({"warning": "five"})


def test_demo_target_can_be_adjusted(tmp_path):
    cfg = load(write(tmp_path, '[targets.demo]\nplan = "team"\n'))
    demo = cfg.target("demo")
    assert demo.plan == "team" and demo.compute == "micro" and demo.embedded


@pytest.mark.parametrize("dsn", ["postgresql://u:Hunter2 secret@127.0.0.1:1/db", "postgresql://u:se%zzcret@h/db",
                                 "host=h sslpassword=KeyPassXYZ"])
def test_a_dsn_that_may_hold_a_secret_is_refused_without_echoing_it(tmp_path, dsn):
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path, f'[targets.prod]\ndsn = "{dsn}"\n'))
    assert not any(part in str(e.value) for part in ("Hunter2", "secret", "zzcret", "KeyPassXYZ"))


def test_an_unparsable_dsn_env_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv("PROD_DSN", "postgresql://u:Hunter2 secret@127.0.0.1:1/db")
    t = from_dict({"targets": {"prod": {"dsn_env": "PROD_DSN"}}}).target("prod")
    with pytest.raises(ConfigError) as e:
        t.conninfo()
    assert "Hunter2" not in str(e.value) and "PROD_DSN" in str(e.value)


def test_every_password_kind_is_redacted():
    shown = redact("postgresql://u@h/db?sslpassword=KeyPass&sslmode=require")
    assert "KeyPass" not in shown and "sslpassword=***" in shown and "sslmode=require" in shown
    assert redact("host=h sslpassword=abc user=u") == "host=h sslpassword=*** user=u"


@pytest.mark.parametrize("name", ["prod.eu", "a--b", "../x", "has space"])
def test_target_names_fit_in_report_file_names(tmp_path, name):
    with pytest.raises(ConfigError, match="target name"):
        load(write(tmp_path, f'[targets."{name}"]\nservice = "s"\n'))


def test_a_pooler_port_is_not_refused_by_its_number(tmp_path):
    """A pooler is recognised at run time by behaviour (tests/test_pooler.py), not by port: a 6543 target loads, and
    it never makes the file's other targets fail."""
    cfg = load(write(tmp_path, '[targets.prod]\ndsn = "postgresql://u@aws-0-eu.pooler.supabase.com:6543/postgres"\n'
                               '[targets.other]\ndsn = "postgresql://u@db.example.com:5432/postgres"\n'))
    assert {"prod", "other"} <= set(cfg.targets)


def test_a_history_url_with_a_password_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"\[history\] url has a password") as e:
        load(write(tmp_path, '[history]\nurl = "postgresql+psycopg://ops:hunter22@db/history"\n'))
    assert "hunter22" not in str(e.value)
    assert load(write(tmp_path, '[history]\nurl = "postgresql+psycopg://ops@db/history"\n')).history_url
