"""`opsbook schedule`, `opsbook notify test` and `opsbook reports prune`: reports that arrive by themselves."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click


@click.group()
def schedule():
    """Scheduled runbooks ([[schedules]] in opsbook.toml) and the timer that runs them."""


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the schedules as JSON.")
def list_schedules(as_json):
    """Every schedule with its last run (time, status, report) and its next run."""
    from . import current_config  # noqa: PLC0415
    from ...schedule.jobs import JobStore  # noqa: PLC0415
    from ...schedule.spec import load_schedules  # noqa: PLC0415

    config = current_config()
    schedules = load_schedules(config)
    store = JobStore(config.history_url)
    try:
        last = store.last_runs()
    finally:
        store.close()
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for s in schedules:
        for target in s.resolve_targets(config):
            r = last.get((s.name, target))
            rows.append({"schedule": s.name, "runbook": s.runbook, "target": target, "cron": s.cron,
                         "timezone": s.timezone, "next_run": f"{s.next_slot(now):%Y-%m-%dT%H:%M:%SZ}",
                         "last_run": _iso(r["started_at"]) if r else None, "last_status": r["status"] if r else None,
                         "last_attempt": r["attempt"] if r else None, "last_report": r["report"] if r else None,
                         "last_error": r["error"] if r else None,
                         "last_notify_failures": _notify_failures(r["report"]) if r else []})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no schedules: add [[schedules]] to opsbook.toml (see the README's Schedules section)")
    for r in rows:
        last_run = (f"last {r['last_run']} {r['last_status']}" + (f" -> {r['last_report']}" if r["last_report"]
                                                                  else "")) if r["last_run"] else "never run"
        click.echo(f"{r['schedule']} ({r['runbook']} on {r['target']}, '{r['cron']}' {r['timezone']}): "
                   f"next {r['next_run']}; {last_run}")
        for f in r["last_notify_failures"]:
            click.echo(f"  notifier {f['notifier']} FAILED at {f['at']}: {f['error']}")


def _notify_failures(report: str | None) -> list[dict]:
    """The notifications of the last run (its sidecar's `notifications`) that did not arrive: notifier, error, at."""
    from ...core.escape import line  # noqa: PLC0415

    if not report:
        return []
    try:
        sent = json.loads(Path(report).read_text(encoding="utf-8")).get("notifications") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [{"notifier": line(str(n.get("notifier"))), "error": line(str(n.get("error") or "not delivered")),
             "at": n.get("at")} for n in sent if isinstance(n, dict) and not n.get("ok")]


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@schedule.command("run-due")
def run_due():
    """Run every job whose newest cron slot has not run yet (a timer calls this every minute)."""
    from . import current_config  # noqa: PLC0415
    from ...schedule.runs import run_due as run  # noqa: PLC0415

    outcomes = run(current_config(), progress=click.echo)
    unsent = [(o, n) for o in outcomes for n in o.notifications if not n.get("ok")]
    for o, n in unsent:  # into the schedule log, with the run it belongs to; `schedule list` shows it too
        click.echo(f"{o.schedule} on {o.target}: notifier {n['notifier']} FAILED: {n['error']}", err=True)
    return 1 if any(o.status == "failed" for o in outcomes) or unsent else 0


@schedule.command("run")
@click.argument("name")
def run_one(name):
    """Run the schedule NAME now, on each of its targets (its regular slots are unaffected)."""
    from . import current_config  # noqa: PLC0415
    from ...schedule.runs import run_now  # noqa: PLC0415

    outcomes = run_now(current_config(), name, progress=click.echo)
    return 0 if all(o.status == "ok" for o in outcomes) else 1


@schedule.command()
@click.option("--cron", "how", flag_value="cron", help="Add a line to this user's crontab.")
@click.option("--systemd", "how", flag_value="systemd", help="Write a systemd service and timer.")
@click.option("--user", is_flag=True, help="With --systemd: a user unit (~/.config/systemd/user).")
@click.option("--dry-run", is_flag=True, help="Print what would be installed; change nothing.")
@click.pass_context
def install(ctx, how, user, dry_run):
    """Install the timer that calls `opsbook schedule run-due` every minute (idempotent)."""
    from . import State, current_config  # noqa: PLC0415
    from ...core.errors import UsageError  # noqa: PLC0415
    from ...schedule import install as inst  # noqa: PLC0415
    from ...schedule.spec import load_schedules  # noqa: PLC0415

    if how is None:
        raise UsageError("give --cron or --systemd")
    config = current_config()
    load_schedules(config)  # a broken schedule is an error now, not at 6 a.m. on the first
    config_file = ctx.find_object(State).config_file()
    if how == "cron":
        line = inst.install_cron(config, config_file, dry_run=dry_run)
        click.echo(line if dry_run else f"installed in the crontab:\n{line}")
        _say_env_file(inst.env_file_for(config, "cron", user=True), dry_run)
        return
    units = inst.install_systemd(config, config_file, user=user, dry_run=dry_run)
    for path, text in units.files().items():
        click.echo(f"# {path}" + (" (not written: --dry-run)" if dry_run else ""))
        click.echo(text)
    _say_env_file(inst.env_file_for(config, "systemd", user=user), dry_run)
    click.echo(f"# then: {units.enable_hint()}")


def _say_env_file(env, dry_run: bool) -> None:
    """Which variables went into the env file (never their values)."""
    if env.values:
        click.echo(f"# {env.path} (mode 0600{', not written: --dry-run' if dry_run else ''}): "
                   f"{', '.join(sorted(env.values))} from this shell")


@schedule.command()
@click.option("--systemd", is_flag=True, help="Remove the systemd units instead of the crontab line.")
@click.option("--user", is_flag=True, help="With --systemd: the user units.")
def uninstall(systemd, user):
    """Remove what `schedule install` installed."""
    from ...schedule import install as inst  # noqa: PLC0415

    if systemd:
        removed = inst.uninstall_systemd(user=user)
        click.echo("\n".join(f"removed {p}" for p in removed) or "no opsbook units installed")
        if removed:
            flag = " --user" if user else ""
            click.echo(f"# then: systemctl{flag} stop {inst.UNIT}.timer; systemctl{flag} daemon-reload")
    else:
        click.echo("removed the crontab line" if inst.uninstall_cron() else "no opsbook line in the crontab")


@click.group()
def notify():
    """Notifications ([notify.NAME] in opsbook.toml)."""


@notify.command("test")
@click.argument("name")
def notify_test(name):
    """Send a test message through the notifier NAME."""
    from . import current_config  # noqa: PLC0415
    from ...core.errors import UsageError  # noqa: PLC0415
    from ...schedule.notify import send_one  # noqa: PLC0415
    from ...schedule.notify.message import Message  # noqa: PLC0415
    from ...schedule.notify.spec import load_notifiers  # noqa: PLC0415

    config = current_config()
    notifiers = load_notifiers(config)
    if name not in notifiers:
        raise UsageError(f"notifier {name!r} not found; known: {', '.join(sorted(notifiers)) or 'none'}")
    msg = Message("done", ("done",), None, "notify-test", "-", "ok", test=True)
    r = send_one(config, notifiers[name], msg)
    click.echo(f"{name}: sent ({r['attempts']} attempt(s))" if r["ok"] else f"{name}: failed: {r['error']}")
    return 0 if r["ok"] else 1


@click.group()
def reports():
    """The reports folder: prune old runs."""


@reports.command()
@click.option("--older-than", required=True, metavar="DURATION", help="Remove runs older than this, e.g. 400d.")
@click.option("--keep-monthly/--no-keep-monthly", default=True, show_default=True,
              help="Keep monthly-health reports whatever their age.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed.")
def prune(older_than, keep_monthly, dry_run):
    """Remove old reports (HTML, notebook, sidecar, artifacts) and rewrite the index."""
    from . import current_config  # noqa: PLC0415
    from ...history.prune import parse_duration  # noqa: PLC0415
    from ...schedule.retention import prune_reports  # noqa: PLC0415

    r = prune_reports(current_config().reports_dir, parse_duration(older_than), keep_monthly=keep_monthly,
                      dry_run=dry_run)
    click.echo(("would have " if dry_run else "") + r.line())


COMMANDS = [schedule, notify, reports]
