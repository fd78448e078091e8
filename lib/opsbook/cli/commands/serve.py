"""`opsbook serve start|stop|status`: the interactive mode, a service of this user holding a warm kernel."""
from __future__ import annotations

import json

import click


@click.group()
def serve():
    """A service of this user that keeps a warm kernel: a repeated `opsbook run` answers in about a second."""


@serve.command("start")
@click.option("--idle", "idle_s", type=click.FloatRange(1, 7 * 86400), default=3600, show_default=True,
              metavar="SECONDS", help="Exit after this long without a request.")
def start(idle_s):
    """Start it in the background (no-op when it runs); returns once its first kernel is warm."""
    from ...run.serve import control  # noqa: PLC0415

    s = control.start(idle_s)
    word = "already running" if s.get("already_running") else "started"
    click.echo(f"opsbook service {word} (pid {s.get('pid', '?')}) on {s['socket']}")


@serve.command("stop")
def stop():
    """Stop it; a run in progress is interrupted and its report written (status failed)."""
    from ...run.serve import control  # noqa: PLC0415

    click.echo("opsbook service stopped" if control.stop() else "no opsbook service was running")


@serve.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(as_json):
    """Whether it runs, since when, how many runs it answered, whether its next kernel is warm (exit 1: none)."""
    from ...run.serve import control  # noqa: PLC0415

    s = control.status()
    if as_json:
        click.echo(json.dumps(s or {"running": False}, indent=2))
    elif s is None:
        click.echo("no opsbook service is running (`opsbook serve start` starts one)")
    elif s.get("busy"):
        click.echo(f"opsbook service running a request on {s['socket']}")
    else:
        click.echo(f"opsbook service running (pid {s['pid']}) on {s['socket']}: since {s['started_at']}, "
                   f"{s['requests']} run(s), kernel {'warm' if s['kernel_ready'] else 'warming up'}, "
                   f"idle {s['idle_s']:g} s of {s['idle_limit_s']:g}")
    return 0 if s else 1


COMMANDS = [serve]
