"""`opsbook snapshot` and `opsbook history prune`: keep the history that capacity planning reads."""
from __future__ import annotations

import click

from ..errors import UsageError


@click.command()
@click.option("--target", "target", metavar="NAME", help="Target to snapshot (default: demo).")
@click.option("--all", "all_targets", is_flag=True, help="Snapshot every configured target.")
@click.option("--budget-ms", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Time budget of one capture; over it, nothing is stored and the command fails.")
def snapshot(target, all_targets, budget_ms):
    """Capture one read-only snapshot of a target's statistics into the history store ([history] url).

    Safe to run every minute from cron: one read-only transaction, one query per catalog view, only changed
    values stored. Prints server time and bytes stored per target.
    """
    from ..commands import current_config  # noqa: PLC0415
    from ..history import open_store, take_snapshot  # noqa: PLC0415

    if target and all_targets:
        raise UsageError("give --target NAME or --all, not both")
    config = current_config()
    names = sorted(config.targets) if all_targets else [target or "demo"]
    for name in names:
        config.target(name)  # unknown target: exit 2 before anything runs
    store = open_store(config)
    failed = 0
    try:
        for name in names:
            try:
                click.echo(take_snapshot(config, name, store=store, budget_ms=budget_ms).line())
            except UsageError:
                raise
            except Exception as e:  # noqa: BLE001 - with --all, one unreachable target must not stop the rest
                if not all_targets:
                    raise
                failed += 1
                click.echo(f"{name}: snapshot failed: {' '.join(str(e).split())}", err=True)
    finally:
        store.close()
    if failed:
        raise SystemExit(1)


@click.group()
def history():
    """The snapshot history store: prune old snapshots."""


@history.command()
@click.option("--older-than", "older_than", required=True, metavar="DURATION",
              help="Delete snapshots older than this, e.g. 90d, 12h, 2w.")
@click.option("--keep-daily/--no-keep-daily", default=True, show_default=True,
              help="Keep the last snapshot of each day beyond the cutoff (a downsampled history).")
@click.option("--target", metavar="NAME", help="Only this target's snapshots (default: all).")
def prune(older_than, keep_daily, target):
    """Delete old snapshots; values later snapshots rely on are kept, so trends read the same."""
    from ..commands import current_config  # noqa: PLC0415
    from ..history import open_store  # noqa: PLC0415
    from ..history.prune import parse_duration  # noqa: PLC0415

    seconds = parse_duration(older_than)
    store = open_store(current_config())
    try:
        click.echo(store.prune(seconds, keep_daily=keep_daily, target=target).line())
        from ..watch.store import prune_samples  # noqa: PLC0415 - activity samples (opsbook watch) too
        click.echo(f"pruned {prune_samples(store.engine, seconds, target=target)} activity sample(s)")
    finally:
        store.close()


COMMANDS = [snapshot, history]
