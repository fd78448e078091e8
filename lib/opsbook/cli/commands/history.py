"""`opsbook snapshot` and `opsbook history prune`: keep the history that capacity planning reads."""
from __future__ import annotations

import click

from ...core.errors import UsageError


@click.command()
@click.option("--target", "targets", metavar="NAME", multiple=True,
              help="Target to snapshot (repeatable; default: demo).")
@click.option("--all", "all_targets", is_flag=True,
              help="Snapshot every target of the configuration (demo only when it is configured or alone).")
@click.option("--budget-ms", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Time budget of one capture; over it, nothing is stored and the command fails.")
def snapshot(targets, all_targets, budget_ms):
    """Capture one read-only snapshot of a target's statistics into the history store ([history] url).

    Safe to run every minute from cron: one read-only transaction, one query per catalog view, only changed
    values stored. Prints server time and bytes stored per target. With several targets, one that fails (an
    unset dsn_env, an unreachable server) is reported on stderr and the others are still taken; the exit code
    is then 1. A store that is locked or full stops the command with one line (exit 2).
    """
    from . import current_config, known_targets  # noqa: PLC0415
    from ...core.errors import StoreError  # noqa: PLC0415
    from ...history import open_store, take_snapshot  # noqa: PLC0415

    if targets and all_targets:
        raise UsageError("give --target NAME or --all, not both")
    config = current_config()
    names = configured_targets(config) if all_targets else list(dict.fromkeys(targets)) or ["demo"]
    known_targets(config, names)
    store = open_store(config)
    failed = 0
    try:
        for name in names:
            try:
                click.echo(take_snapshot(config, name, store=store, budget_ms=budget_ms).line())
            except StoreError:
                raise  # the store is everyone's: no point trying the next target
            except Exception as e:  # noqa: BLE001 - one target's problem must not stop the others
                if len(names) == 1:
                    raise
                failed += 1
                click.echo(f"opsbook: {name}: snapshot failed: {' '.join(str(e).split())[:300]}", err=True)
    finally:
        store.close()
    if failed:
        raise SystemExit(1)


def configured_targets(config) -> list[str]:
    """What `--all` means: the targets the configuration file names; the built-in demo only when the file names
    it too or names no other target (the built-in configuration)."""
    from ...config.file import DEMO_TARGET  # noqa: PLC0415

    named = [n for n in (config.raw.get("targets") or {}) if n in config.targets]
    return sorted(named) if named else [DEMO_TARGET]


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
    from . import current_config  # noqa: PLC0415
    from ...history import open_store  # noqa: PLC0415
    from ...history.prune import parse_duration  # noqa: PLC0415

    seconds = parse_duration(older_than)
    store = open_store(current_config())
    try:
        click.echo(store.prune(seconds, keep_daily=keep_daily, target=target).line())
        from ...incident.watch.store import prune_samples  # noqa: PLC0415 - activity samples (opsbook watch) too
        click.echo(f"pruned {prune_samples(store.engine, seconds, target=target)} activity sample(s)")
    finally:
        store.close()


COMMANDS = [snapshot, history]
