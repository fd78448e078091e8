"""Extra `opsbook` commands: each module here that exposes `COMMANDS = [click commands]` joins the CLI.

A command module reads the configuration in use with `current_config()`, e.g.

    @click.command()
    def snapshot():
        '''Take a snapshot.'''
        from opsbook.cli.commands import current_config
        ...take_snapshot(current_config())
    COMMANDS = [snapshot]
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class State:
    """What the `opsbook` group hands to its commands: the --config path, loaded on first use."""

    config_path: str | None = None
    _config: Any = field(default=None, repr=False)

    def config(self):
        if self._config is None:
            from ...config.file import load  # noqa: PLC0415

            self._config = load(self.config_path)
        return self._config

    def config_file(self) -> Path | None:
        """The absolute path of the configuration file in use, if any (for child processes)."""
        path = self.config().path
        return Path(path).absolute() if path else None


def current_config():
    """The Config of the running `opsbook` command (its --config / OPSBOOK_CONFIG / ./opsbook.toml)."""
    import click  # noqa: PLC0415

    ctx = click.get_current_context()
    state = ctx.find_object(State)
    if state is None:
        state = ctx.ensure_object(State)
    return state.config()


def known_targets(config, names: list[str]) -> None:
    """Every name a configured target (else exit 2 before anything runs); the built-in demo target's server
    started and its database built, as a runbook on it would."""
    targets = [config.target(name) for name in names]
    if any(t.embedded for t in targets):
        from ...database.demo.build import ensure_demo_server  # noqa: PLC0415

        ensure_demo_server()


def discover() -> dict[str, Any]:
    """{name: click command} from every module in this package that defines COMMANDS."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception as e:  # noqa: BLE001 - one broken add-on must not take the whole CLI down
            print(f"opsbook: warning: commands/{info.name}.py could not be loaded: {type(e).__name__}: {e}",
                  file=sys.stderr)
            continue
        for command in getattr(module, "COMMANDS", []):
            found[command.name] = command
    return found
