"""The `opsbook` command line: each command parses, calls one library function, and prints."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .. import __version__
from .commands import State, discover
from ..core.errors import OpsbookError, write_error_line

pass_state = click.make_pass_decorator(State, ensure=True)


class OpsbookGroup(click.Group):
    """Adds the command modules found in opsbook/commands/, and turns every error into one line on stderr."""

    _extra: dict | None = None

    def extra(self) -> dict:
        if OpsbookGroup._extra is None:
            OpsbookGroup._extra = discover()
        return OpsbookGroup._extra

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *self.extra()})

    def get_command(self, ctx, name):
        return super().get_command(ctx, name) or self.extra().get(name)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name or "opsbook", complete_var, standalone_mode=False, **extra)
        except OpsbookError as e:
            _fail(str(e), e.exit_code)
        except click.UsageError as e:
            hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
            _fail(e.format_message() + hint, e.exit_code)
        except click.ClickException as e:
            _fail(e.format_message(), e.exit_code)
        except (click.Abort, KeyboardInterrupt):
            _fail("interrupted", 130)
        except OSError as e:  # a full disk, a read-only or vanished folder: what the user must fix, in one line
            line = write_error_line(e)
            if line is None:
                raise
            _fail(line, 2)
        sys.exit(rv if isinstance(rv, int) else 0)


def _fail(message: str, code: int):
    click.echo(f"opsbook: error: {' '.join(str(message).split())}", err=True)
    sys.exit(code)


@click.group(cls=OpsbookGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", metavar="PATH", envvar="OPSBOOK_CONFIG",
              help="opsbook.toml to use (default: $OPSBOOK_CONFIG, else ./opsbook.toml, else built-in demo only).")
@click.version_option(__version__, prog_name="opsbook")
@click.pass_context
def main(ctx, config_path):
    """Executable runbooks for PostgreSQL and Supabase: diagnose, report, recover."""
    ctx.obj = State(config_path)


@main.command("list")
def list_command():
    """Runbooks with their one-line purpose."""
    from ..run.runner import list_runbooks  # noqa: PLC0415

    rows = list_runbooks()
    width = max((len(name) for name, _ in rows), default=0)
    for name, purpose in rows:
        click.echo(f"{name:<{width}}  {purpose}")


@main.command()
@click.argument("runbook")
@click.option("--json", "as_json", is_flag=True, help="Print the parameters as a JSON list.")
def describe(runbook, as_json):
    """The parameters of RUNBOOK: name, type, default, help."""
    from ..run.runner import describe as describe_runbook  # noqa: PLC0415

    spec = describe_runbook(runbook)
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in spec], indent=2, default=str))
        return
    rows = [(p.name, p.type, repr(p.default), p.help) for p in spec]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)) + f"  {r[3]}".rstrip())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
def checks(as_json):
    """The check catalogue: id, concern, what it looks at, thresholds with unit, default and source."""
    from ..checks.catalogue import check_catalogue, format_catalogue  # noqa: PLC0415

    entries = check_catalogue()
    click.echo(json.dumps(entries, indent=2, default=str) if as_json else format_catalogue(entries), nl=as_json)


@main.command()
@click.argument("runbook")
@click.option("--target", "-t", "targets", multiple=True, metavar="NAME",
              help="Target name from opsbook.toml (default: demo); once: `opsbook fleet` runs several.")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Set a runbook parameter (repeatable); `opsbook describe RUNBOOK` lists them.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Reports folder (default: [reports] dir of the config, else reports/ under $OPSBOOK_HOME, "
                   "else under the checkout, else under the per-user data folder).")
@click.option("--with-code", is_flag=True, help="Keep the code cells in the HTML report.")
@click.option("--self-contained", is_flag=True, help="Inline plotly.js so the HTML opens on its own.")
@click.option("--fail-on", type=click.Choice(["warning", "critical"]),
              help="Exit 3 when a finding of this severity or worse exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as one JSON object instead of the path.")
@click.option("--local", is_flag=True, help="Run in this process even when an `opsbook serve` service runs.")
@pass_state
def run(state, runbook, targets, params, output_dir, with_code, self_contained, fail_on, as_json, local):
    """Run RUNBOOK against a target and write its report; prints the HTML report's path.

    When this user's service runs (`opsbook serve start`), it does the run in its warm kernel, with this
    command's environment, folder and configuration; else, or with --local, the run happens here."""
    from ..core.errors import UsageError  # noqa: PLC0415
    from ..config.params import parse_assignments  # noqa: PLC0415

    if len(set(targets)) > 1:
        raise UsageError(f"--target given {len(targets)} times ({', '.join(targets)}); `opsbook run` runs one "
                         "target: give it once, or use `opsbook fleet RUNBOOK --targets a,b`")
    target = targets[0] if targets else "demo"
    values = parse_assignments(params)
    answer = None
    if not local:
        from ..run.serve.client import run_via_service  # noqa: PLC0415

        answer = run_via_service(runbook=runbook, target=target, params=values, output_dir=output_dir,
                                 with_code=with_code, self_contained=self_contained, fail_on=fail_on,
                                 config_path=state.config_path)
    if answer is not None and "result" not in answer:
        error = OpsbookError(answer.get("error") or "the service gave no answer")
        error.exit_code = int(answer.get("exit_code", 1))
        raise error
    if answer is not None:
        outcome, code = answer["result"], int(answer["exit_code"])
    else:
        from ..run.runner import run_runbook  # noqa: PLC0415

        result = run_runbook(runbook, target, values, config=state.config(), output_dir=output_dir,
                             with_code=with_code, self_contained=self_contained, fail_on=fail_on)
        outcome, code = result.to_json(), result.exit_code
    click.echo(json.dumps(outcome, indent=2, default=str) if as_json else outcome["report_html"])
    if code == 1:
        click.echo(f"opsbook: the runbook failed: {outcome['error']}", err=True)
    elif code == 3:
        click.echo(f"opsbook: findings at or above {fail_on} (--fail-on)", err=True)
    return code


@main.command()
@pass_state
def demo(state):
    """The whole product on the embedded demo database: start it, build it, run every runbook, write the index."""
    from .demo import run_demo  # noqa: PLC0415

    index, results = run_demo(config=state.config(), progress=click.echo)
    click.echo(str(index))
    return 1 if any(r.exit_code == 1 for r in results) else 0


@main.group()
def db():
    """The embedded PostgreSQL server behind the `demo` target, for stepping through runbooks in JupyterLab."""


@db.command("start")
def db_start():
    """Initialise (first time) and start the embedded server."""
    from ..database.embedded import default_server  # noqa: PLC0415

    click.echo(_server_status(default_server().start()))


@db.command("stop")
def db_stop():
    """Stop the embedded server."""
    from ..database.embedded import default_server  # noqa: PLC0415

    click.echo(_server_status(default_server().stop()))


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def db_status(as_json):
    """Whether the embedded server runs, where, and which version."""
    from ..database.embedded import default_server  # noqa: PLC0415

    server = default_server()
    status = server.status()
    if status["running"]:  # how to reach the demo database by hand: its connection string and a psql line
        import shlex  # noqa: PLC0415

        from ..config.file import DEMO_DATABASE  # noqa: PLC0415

        status["dsn"] = server.conninfo(dbname=DEMO_DATABASE)
        status["psql"] = shlex.join([str(server.bindir / "psql"), status["dsn"]])
    click.echo(json.dumps(status, indent=2) if as_json else _server_status(status))


def _server_status(s: dict) -> str:
    state = f"running (pid {s['pid']}, port {s['port']})" if s["running"] else \
        ("stopped" if s["initialized"] else "not initialised (`opsbook db start` creates it)")
    reach = f"\n  demo database: {s['dsn']}\n  psql: {s['psql']}" if s.get("dsn") else ""
    return (f"embedded PostgreSQL {s['version']}: {state}\n  data: {s['data_dir']}\n  runs as: {s['run_as']}\n"
            f"  log: {s['log']}{reach}")


@main.command()
@click.argument("runbook", required=False)
@click.option("--target", "-t", "targets", multiple=True, metavar="NAME",
              help="Target name from opsbook.toml for the working copy (default: demo).")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Set a runbook parameter in the working copy (repeatable), checked as `opsbook run` checks it.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser (prints the URL).")
@click.option("--install-kernel", is_flag=True,
              help="Install the `opsbook` kernelspec (this Python) into this environment's share/jupyter, and exit.")
@pass_state
def lab(state, runbook, targets, params, no_browser, install_kernel):
    """JupyterLab on a working copy of RUNBOOK: a dated copy in the reports folder, with the parameters injected as
    `opsbook run` injects them; the template under runbooks/ is never saved over. Without RUNBOOK, Lab on the
    runbooks folder, whose templates open read-only. OPSBOOK_CONFIG is set to the configuration in use."""
    from ..core.errors import UsageError  # noqa: PLC0415
    from ..config.params import parse_assignments  # noqa: PLC0415

    if install_kernel:
        from ..run.kernelspec import install_kernelspec  # noqa: PLC0415

        click.echo(install_kernelspec(config_file=state.config_path))
        return 0
    if runbook is None and (targets or params):
        raise UsageError("--target and -p set up a working copy: name its runbook, "
                         "e.g. `opsbook lab incident-triage --target demo`")
    if len(set(targets)) > 1:
        raise UsageError(f"--target given {len(targets)} times ({', '.join(targets)}); a working copy is for "
                         "one target")
    from ..run.lab import open_lab  # noqa: PLC0415

    return open_lab(state.config(), state.config_file(), runbook,
                    targets[0] if targets else "demo", parse_assignments(params), no_browser=no_browser,
                    announce=lambda copy: click.echo(f"working copy: {copy}"))


if __name__ == "__main__":  # pragma: no cover
    main()
