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
                         "last_error": r["error"] if r else None, **_waiting(r),
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
        if r["waiting"] == "target":
            click.echo(f"  waiting for {r['target']} to answer: {_line(r['last_error'])}; failed {r['last_attempt']} "
                       f"attempt(s), reported; runs once more when it answers, until {r['waiting_until']}")
        elif r["waiting"] == "feeding":
            click.echo(f"  {_line(r['last_error'])}")
        for f in r["last_notify_failures"]:
            click.echo(f"  notifier {f['notifier']} FAILED at {f['at']}: {f['error']}")


def _waiting(r: dict | None) -> dict:
    """What a job's row waits for: "target" (it could not be reached; it runs once more when it answers, until
    `waiting_until`), "feeding" (a job whose report it links is running or retrying), or None."""
    from ...schedule.jobs import WAITING_FEED, WAITING_TARGET  # noqa: PLC0415

    status = r["status"] if r else None
    waiting = {WAITING_TARGET: "target", WAITING_FEED: "feeding"}.get(status)
    until = _iso(r["next_retry_at"]) if waiting == "target" else None
    return {"waiting": waiting, "waiting_until": until}


def _line(text: str | None) -> str:
    from ...core.escape import line  # noqa: PLC0415

    return line(str(text or ""))


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
@click.option("--cron", "how", flag_value="cron", help="Add lines to this user's crontab.")
@click.option("--systemd", "how", flag_value="systemd", help="Write systemd services and timers.")
@click.option("--user", is_flag=True, help="With --systemd: user units (~/.config/systemd/user).")
@click.option("--run-as", "run_as", metavar="USER",
              help="With --systemd (system units): the account they run as (default: the installing user; root "
                   "only when named).")
@click.option("--dry-run", is_flag=True, help="Print what would be installed; change nothing.")
@click.pass_context
def install(ctx, how, user, run_as, dry_run):
    """Install this configuration's timers (idempotent): `opsbook schedule run-due` every minute, history snapshots
    every [history] snapshot_every (default 15m) and `opsbook watch` when [history] watch_every is set. Each
    configuration gets its own timers, named with a short id of its path."""
    from . import State, current_config  # noqa: PLC0415
    from ...core.errors import UsageError  # noqa: PLC0415
    from ...schedule import accounts, install as inst  # noqa: PLC0415
    from ...schedule.spec import load_schedules  # noqa: PLC0415
    from ...schedule.timers import config_id  # noqa: PLC0415

    if how is None:
        raise UsageError("give --cron or --systemd")
    if run_as is not None and (how == "cron" or user):
        raise UsageError("--run-as is for system units (--systemd without --user): cron and user units run as "
                         "the user who installs them")
    config = current_config()
    load_schedules(config)  # a broken schedule is an error now, not at 6 a.m. on the first
    config_file = ctx.find_object(State).config_file()
    cid = config_id(config_file)
    if how == "cron":
        change = inst.install_cron(config, config_file, dry_run=dry_run)
        click.echo("\n".join(change.written) if dry_run else "installed in the crontab:\n" + "\n".join(change.written))
        _say_legacy(change, "crontab line")
        _say_env_file(inst.env_file_for(config, "cron", user=True, cid=cid), dry_run)
        return
    account = None if user else accounts.run_as(run_as)
    if account is not None and account.uid == 0:
        click.echo("opsbook: warning: the system units run opsbook as root (--run-as root): every runbook and "
                   "snapshot runs with root's files and privileges", err=True)
    units, change = inst.install_systemd(config, config_file, user=user, dry_run=dry_run, account=account)
    for path, text in units.files().items():
        click.echo(f"# {path}" + (" (not written: --dry-run)" if dry_run else ""))
        click.echo(text)
    for p in change.removed:
        click.echo(f"# removed {p} (a job this configuration no longer has)")
    _say_legacy(change, "systemd units")
    _say_env_file(inst.env_file_for(config, "systemd", user=user, cid=cid), dry_run)
    if account is not None:
        click.echo(f"# the units run as {account.user}:{account.group} (User=, Group=; HOME={account.home})")
    if user:
        click.echo(accounts.linger_note(accounts.current_user()))
    click.echo(f"# then: {units.enable_hint()}")
    gone = sorted({Path(p).name for p in change.removed if p.endswith(".timer") or "-watch-" in p}
                  | ({f"{inst.earlier.UNIT}.timer"} if change.legacy else set()))
    if gone and not dry_run:
        flag = " --user" if user else ""
        click.echo(f"# and stop what was removed: systemctl{flag} stop {' '.join(gone)}")


def _say_env_file(env, dry_run: bool) -> None:
    """Which variables went into the env file (never their values)."""
    if env.values:
        click.echo(f"# {env.path} (mode 0600{', not written: --dry-run' if dry_run else ''}): "
                   f"{', '.join(sorted(env.values))} from this shell")


def _say_legacy(change, what: str) -> None:
    if change.legacy:
        click.echo(f"# migrated: an earlier opsbook's {what} for this configuration (named without an id) "
                   f"replaced by the ones above ({len(change.legacy)} removed)")


@schedule.command()
@click.option("--systemd", is_flag=True, help="Remove the systemd units instead of the crontab lines.")
@click.option("--user", is_flag=True, help="With --systemd: the user units.")
@click.option("--all", "every", is_flag=True, help="Remove the timers of every configuration, not only this one's.")
@click.pass_context
def uninstall(ctx, systemd, user, every):
    """Remove what `schedule install` installed for this configuration (--config), or for all with --all."""
    from . import State  # noqa: PLC0415
    from ...schedule import install as inst  # noqa: PLC0415

    config_file = None if every else ctx.find_object(State).config_file()
    if systemd:
        change = inst.uninstall_systemd(config_file, user=user, every=every)
        removed = change.removed + change.legacy
        click.echo("\n".join(f"removed {p}" for p in removed) or "no opsbook units installed for this configuration")
        _say_others(change.others, "unit file(s)")
        if removed:
            flag = " --user" if user else ""
            units = sorted({Path(p).name for p in removed if p.endswith(".timer") or "opsbook-watch-" in p})
            click.echo(f"# then: systemctl{flag} stop {' '.join(units) or '...'}; systemctl{flag} daemon-reload")
    else:
        change = inst.uninstall_cron(config_file, every=every)
        lines = [p for p in change.removed if not p.endswith(".env")]
        click.echo(f"removed the crontab lines ({len(lines) + len(change.legacy)})" if lines or change.legacy
                   else "no opsbook line in the crontab for this configuration")
        _say_others(change.others, "crontab line(s)")


def _say_others(count: int, what: str) -> None:
    if count:
        click.echo(f"# {count} {what} of other configurations left in place (uninstall with their --config, or "
                   "--all)")


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
    """The reports folder: prune old runs, serve it read-only."""


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



@reports.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="TCP port (0: any free one).")
@click.option("--bind", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="Address to listen on; anything but loopback is reachable by others, without authentication.")
@click.option("--with-notebooks", is_flag=True, help="Serve the executed notebooks (.ipynb) too.")
def serve_reports(port, bind, with_notebooks):
    """Serve the reports folder over read-only HTTP: the index, reports, sidecars, plotly and pictures; never the
    history store, the notebooks (unless asked), logs or dotfiles. For others, put nginx or Caddy with
    authentication in front (docs)."""
    from . import current_config  # noqa: PLC0415
    from ...report.serve import serve  # noqa: PLC0415

    serve(current_config().reports_dir, bind=bind, port=port, with_notebooks=with_notebooks,
          announce=lambda text: click.echo(text), warn=lambda text: click.echo(f"opsbook: {text}", err=True))


COMMANDS = [schedule, notify, reports]
