"""opsbook's import graph, read from the code with `ast`: modules, the imports between them, and their circles.

`python tests/structure.py` prints the circles (module level and between top-level packages) and the layers.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib"
ROOT_PACKAGE = "opsbook"


def modules(lib: Path = LIB) -> dict[str, tuple[Path, bool]]:
    """{dotted name: (file, is a package's __init__)} of every module under lib/opsbook."""
    out = {}
    for path in sorted((lib / ROOT_PACKAGE).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(lib).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _resolve(importer: str, is_pkg: bool, level: int, module: str | None) -> str:
    if not level:
        return module or ""
    base = importer.split(".") if is_pkg else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports(lib: Path = LIB) -> dict[str, set[str]]:
    """{module: the opsbook modules it imports}, every import counted, at the top or inside a function.

    `from P import name` points at P.name when that is a module (a submodule import), else at P itself.
    """
    mods = modules(lib)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, (path, is_pkg) in mods.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_pkg, node.level, node.module)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in mods else base)
            for target in targets:
                while target and target not in mods:  # `import opsbook.x.y` names a module; an attribute's owner
                    target = target.rpartition(".")[0]
                if target and target != name and target.split(".")[0] == ROOT_PACKAGE:
                    graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def top_level(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same imports between the top-level parts of opsbook (its packages and flat modules)."""
    def part(module: str) -> str:
        pieces = module.split(".")
        return ".".join(pieces[:2])

    out: dict[str, set[str]] = {}
    for source, targets in graph.items():
        out.setdefault(part(source), set())
        for target in targets:
            if part(target) != part(source) and part(target) != ROOT_PACKAGE:
                out[part(source)].add(part(target))
    return out


def layers(graph: dict[str, set[str]]) -> list[list[str]]:
    """Floors from the ground up: each part stands one above the highest part it imports (needs no circles)."""
    floor: dict[str, int] = {}

    def height(node: str, path: tuple = ()) -> int:
        if node not in floor:
            floor[node] = 1 + max((height(t, path + (node,)) for t in graph.get(node, ()) if t not in path),
                                  default=0)
        return floor[node]

    for node in graph:
        height(node)
    top = max(floor.values(), default=0)
    return [sorted(n for n, f in floor.items() if f == k) for k in range(1, top + 1)]


def main() -> int:
    graph = imports()
    module_circles = circles(graph)
    packages = top_level(graph)
    package_circles = circles(packages)
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports between them")
    print(f"module circles: {len(module_circles)}")
    for c in module_circles:
        print("  " + " <-> ".join(c))
    print(f"top-level parts: {len(packages)}; circles between them: {len(package_circles)}")
    for c in package_circles:
        print("  " + " <-> ".join(c))
    if not package_circles:
        for k, floor in enumerate(layers(packages), 1):
            print(f"  floor {k}: {', '.join(p.removeprefix(ROOT_PACKAGE + '.') for p in floor)}")
    return 1 if module_circles or package_circles else 0


if __name__ == "__main__":
    sys.exit(main())
