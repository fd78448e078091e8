"""`opsbook backups prune`: keep only the newest dumps opsbook wrote for a target (they hold every row)."""
from __future__ import annotations

import click

from ...core.errors import UsageError


@click.group()
def backups():
    """The dumps opsbook writes (take_backup=True) into a target's backups folder."""


@backups.command()
@click.option("--keep", type=click.IntRange(min=1), required=True, metavar="N",
              help="How many of the newest dumps to keep per target.")
@click.option("--target", "target", metavar="NAME", help="Only this target (default: every target with a backups "
              "folder, and the demo).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def prune(keep, target, dry_run):
    """Remove all but the newest N dumps named by opsbook (backup_<target>_<time>Z.*) in each backups folder;
    other files there are never touched."""
    from . import current_config  # noqa: PLC0415
    from ...core.display import human_bytes  # noqa: PLC0415
    from ...recovery import dump  # noqa: PLC0415
    from ...recovery.runbook import backups_folder  # noqa: PLC0415

    config = current_config()
    names = [config.target(target).name] if target else sorted(config.targets)
    done = 0
    for name in names:
        t = config.target(name)
        folder = backups_folder(t)
        if folder is None or not folder.is_dir():
            if target:
                where = folder or "none configured: set backups = \"/path\" on the target"
                raise UsageError(f"target {name!r} has no backups folder ({where})")
            continue
        prefix = dump.name_prefix(t.name)
        doomed = dump.prune(folder, keep, prefix=prefix, dry_run=True)
        size = sum(dump.size_of(p) for p in doomed)
        removed = doomed if dry_run else dump.prune(folder, keep, prefix=prefix)
        verb = "would remove" if dry_run else "removed"
        click.echo(f"{name}: {verb} {len(removed)} dump(s) ({human_bytes(size)}) in {folder}, kept the newest {keep}")
        done += 1
    if not done:
        click.echo("no backups folder found (the demo's, or `backups = \"/path\"` on a target)")


COMMANDS = [backups]
