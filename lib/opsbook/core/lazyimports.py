"""Keep import-time work nobody uses out of opsbook's processes: the IRI grammar jsonschema builds on import."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

# jsonschema's format checker does `from rfc3987_syntax import is_valid_syntax` when that package is installed
# (JupyterLab's jupyter_events pulls it in), and rfc3987_syntax compiles an Earley grammar with lark at import:
# about a second, in every process that imports nbformat (papermill, nbconvert, plotly in the kernel), for an
# "iri" format check that no notebook schema uses. The stand-in package below exposes the same function and
# imports the real grammar module on the first call only, so validation behaves exactly as before.
GRAMMAR_PACKAGE = "rfc3987_syntax"
_SHIM = '''
def is_valid_syntax(*args, **kwargs):
    """rfc3987_syntax.is_valid_syntax, its grammar built on first use (opsbook.core.lazyimports)."""
    from rfc3987_syntax.syntax_helpers import is_valid_syntax as real
    return real(*args, **kwargs)


def __getattr__(name):
    if name.startswith("__") or name == "syntax_helpers":
        # `hasattr(module, "__file__")` over sys.modules (ipykernel does it) must not build the grammar, and
        # `from rfc3987_syntax import syntax_helpers` asks for the submodule before importing it
        raise AttributeError(name)
    import importlib
    return getattr(importlib.import_module("rfc3987_syntax.syntax_helpers"), name)
'''


class _ShimLoader:  # a loader by protocol: importlib.abc would import importlib.resources (~15 ms)
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(compile(_SHIM, module.__spec__.origin or GRAMMAR_PACKAGE, "exec"), module.__dict__)  # noqa: S102


class _ShimFinder:  # a meta path finder by protocol
    def find_spec(self, name, path=None, target=None):
        if name != GRAMMAR_PACKAGE:
            return None
        real = importlib.machinery.PathFinder.find_spec(name)
        if real is None or not real.submodule_search_locations:
            return None  # not installed: jsonschema's own ImportError path applies
        spec = importlib.util.spec_from_loader(name, _ShimLoader(), origin=real.origin, is_package=True)
        spec.submodule_search_locations = list(real.submodule_search_locations)  # the real submodules load
        return spec


def install() -> None:
    """Put the stand-in first on sys.meta_path (idempotent; harmless once the real package is imported)."""
    if GRAMMAR_PACKAGE not in sys.modules and not any(isinstance(f, _ShimFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _ShimFinder())
