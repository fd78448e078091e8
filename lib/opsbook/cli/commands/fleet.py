"""`opsbook fleet`: one runbook over many targets at once."""
from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("runbook")
@click.option("--targets", "names", metavar="A,B,C", help="Comma-separated target names.")
@click.option("--all", "all_targets", is_flag=True, help="Every configured target (the built-in demo only if named).")
@click.option("--tag", metavar="TAG", help="Every target with this tag (tags = [...] in opsbook.toml).")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="A runbook parameter (repeatable).")
@click.option("--workers", type=click.IntRange(min=1, max=256), help="Parallel runs (default: the number of cores).")
@click.option("--scheduler", metavar="tls://HOST:8786",
              help="Run on this Dask scheduler's workers, over TLS with the [fleet] certificates.")
@click.option("--insecure", is_flag=True,
              help="Accept a plain tcp:// scheduler: whoever reaches it runs code as its workers and reads the wire.")
@click.option("--timeout-per-target", "timeout_s", type=click.FloatRange(min=1), default=600, show_default=True,
              help="Seconds one target may take; then its run is killed and reported failed.")
@click.option("--fail-on", type=click.Choice(["warning", "critical"]), help="Exit 3 when any target has such a finding.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="Reports folder.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: per target what `run --json` prints, with its worker and attempts.")
def fleet(runbook, names, all_targets, tag, params, workers, scheduler, insecure, timeout_s, fail_on, output_dir,
          as_json):
    """Run RUNBOOK on many targets in parallel and write a fleet summary; prints the summary's path."""
    from . import current_config  # noqa: PLC0415
    from ...fleet import run_fleet  # noqa: PLC0415
    from ...fleet.targets import select  # noqa: PLC0415
    from ...config.params import parse_assignments  # noqa: PLC0415

    config = current_config()
    targets = select(config, names=names, all_targets=all_targets, tag=tag)
    result = run_fleet(runbook, targets, parse_assignments(params), config=config, workers=workers,
                       scheduler=scheduler, timeout_s=timeout_s, fail_on=fail_on, output_dir=output_dir,
                       progress=None, insecure=insecure)
    click.echo(json.dumps(result.to_json(), indent=2, default=str) if as_json else str(result.summary_html))
    return result.exit_code


COMMANDS = [fleet]
