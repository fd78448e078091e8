"""`opsbook watch`: activity samples every few seconds, for post-mortems."""
from __future__ import annotations

import click

from ...core.errors import UsageError


@click.command()
@click.option("--target", "target", metavar="NAME", help="Target to sample (default: demo).")
@click.option("--all", "all_targets", is_flag=True,
              help="Sample every target of the configuration (demo only when it is configured or alone).")
@click.option("--every", default="10s", show_default=True, metavar="DURATION", help="Time between samples.")
@click.option("--for", "for_", default=None, metavar="DURATION", help="Stop after this long (default: never).")
def watch(target, all_targets, every, for_):
    """Sample sessions, blocking trees, the longest transaction and counters into the history store.

    Runs until --for ends or SIGTERM/SIGINT arrives (the sample in progress is stored, exit 0). A target that
    goes away is retried at every tick and the gap is recorded. Each sample is one read-only query.
    """
    from . import current_config, known_targets  # noqa: PLC0415
    from ...history import open_store  # noqa: PLC0415
    from ...history.prune import parse_duration  # noqa: PLC0415
    from ...incident.watch import Watcher  # noqa: PLC0415

    if target and all_targets:
        raise UsageError("give --target NAME or --all, not both")
    every_s = parse_duration(every)
    for_s = parse_duration(for_) if for_ else None
    config = current_config()
    from .history import configured_targets  # noqa: PLC0415 - what `snapshot --all` means

    names = configured_targets(config) if all_targets else [target or "demo"]
    known_targets(config, names)
    store = open_store(config)
    try:
        w = Watcher(config, names, store=store, every_s=every_s, for_s=for_s, echo=click.echo)
        w.install_signals()
        where = store.engine.url.render_as_string(hide_password=True)
        click.echo(f"watching {', '.join(names)} every {every_s:g}s"
                   + (f" for {for_s:g}s" if for_s else " until stopped") + f" into {where}")
        counts = w.run()
    finally:
        store.close()
    click.echo(f"stopped: {counts['samples']} sample(s), {counts['gaps']} gap(s)")


COMMANDS = [watch]
