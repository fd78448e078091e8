"""Checks: one module per concern; each registers its checks in the registry on import."""
from __future__ import annotations

import importlib
import pkgutil

from .registry import REGISTRY, Check, CheckContext, CheckResult, Threshold, register, run_check


def modules() -> list[str]:
    """Every module in this package but the registry: one per concern."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "registry")


def load_all() -> dict[str, Check]:
    """Import every check module and return the registry, sorted by id."""
    for name in modules():
        importlib.import_module(f"{__name__}.{name}")
    return dict(sorted(REGISTRY.items()))


def get(check_id: str) -> Check:
    load_all()
    try:
        return REGISTRY[check_id]
    except KeyError:
        from ..core.errors import UsageError  # noqa: PLC0415

        raise UsageError(f"unknown check {check_id!r}; `opsbook checks` lists them") from None


__all__ = ["Check", "CheckContext", "CheckResult", "Threshold", "register", "run_check", "load_all", "get",
           "REGISTRY"]
