"""Which targets a fleet run covers: named, every configured one, or those with a tag."""
from __future__ import annotations

from ..config.file import DEMO_TARGET
from ..core.errors import UsageError


def tags_of(target) -> list[str]:
    tags = getattr(target, "tags", None) or target.extra.get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, (list, tuple)) else []


def select(config, *, names: str | None = None, all_targets: bool = False, tag: str | None = None) -> list[str]:
    """Target names in configuration order; exactly one of names / all_targets / tag. `--all` leaves out the
    built-in demo unless the configuration names it."""
    given = [x for x in (names, all_targets or None, tag) if x]
    if len(given) != 1:
        raise UsageError("give exactly one of --targets a,b,c, --all or --tag NAME")
    if names:
        out = [n.strip() for n in names.split(",") if n.strip()]
        if not out:
            raise UsageError("--targets needs at least one target name")
        for n in out:
            config.target(n)  # unknown: exit 2 with the known names
        if len(set(out)) != len(out):
            raise UsageError("--targets names a target twice")
        return out
    configured = [n for n in config.targets if n != DEMO_TARGET or DEMO_TARGET in config.raw.get("targets", {})]
    if all_targets:
        if not configured:
            raise UsageError("--all: the configuration has no targets besides the built-in demo; name it with "
                             "--targets demo")
        return configured
    out = [n for n in config.targets if tag in tags_of(config.targets[n])]
    if not out:
        raise UsageError(f"no target has the tag {tag!r}; tags are set per target: tags = [\"prod\", \"eu\"]")
    return out
