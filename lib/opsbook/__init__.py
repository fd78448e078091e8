"""opsbook: executable runbooks for PostgreSQL and Supabase."""
from __future__ import annotations

__version__ = "0.1.0"

from .core import lazyimports as _lazyimports  # noqa: E402

_lazyimports.install()  # before anything imports nbformat/jsonschema (the CLI, a runbook's first cell)

from .report.record import record  # noqa: E402  - the one helper every runbook calls

__all__ = ["record", "__version__"]
