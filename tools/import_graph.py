"""edgec's import graph: cross-package edges (module-level and function-level) and the longest functions.

python tools/import_graph.py [ROOT]   (ROOT defaults to the repo this file sits in)
tests/test_layers.py checks the same edges against the layer order.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path


def modules(root: Path):
    for p in sorted((root / "edgec").rglob("*.py")):
        parts = list(p.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), p


def imports(name: str, path: Path):
    """(imported name, 'module' | 'function', line) for every edgec import in the file."""
    tree = ast.parse(path.read_text())
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def walk(node, in_func):
        for child in ast.iter_child_nodes(node):
            kind = "function" if in_func else "module"
            if isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.split(".")[0] == "edgec":
                        yield a.name, kind, child.lineno
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = pkg.split(".")
                    up = up[: len(up) - child.level + 1]
                    base = ".".join(up + ([base] if base else []))
                if base.split(".")[0] == "edgec":
                    for a in child.names:
                        yield (base if a.name == "*" else f"{base}.{a.name}"), kind, child.lineno
            yield from walk(child, in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    yield from walk(tree, False)


def package_of(mod: str) -> str:
    return ".".join(mod.split(".")[:2])


def edges(root: Path, same_package: bool = False):
    """(module, imported module, kind, line); `from pkg import name` resolves to pkg.name when that is a module."""
    known = {m for m, _ in modules(root)}
    for name, path in modules(root):
        for target, kind, line in imports(name, path):
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target != name and (same_package or package_of(name) != package_of(target)):
                yield name, target, kind, line


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    nodes = set(graph) | {d for ds in graph.values() for d in ds}
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    out.append(comp)
    return out


def longest(root: Path, n: int = 10):
    rows = []
    for name, path in modules(root):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                rows.append((node.end_lineno - node.lineno + 1, f"{name}:{node.name}"))
    return sorted(rows, reverse=True)[:n]


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    count = Counter((package_of(a), package_of(b), k) for a, b, k, _ in edges(root))
    print("cross-package imports (from -> to: module-level / function-level import statements)")
    for a, b in sorted({(a, b) for a, b, _ in count}):
        print(f"  {a:20s} -> {b:20s} {count[(a, b, 'module')]:3d} / {count[(a, b, 'function')]:3d}")
    mod = sum(v for (_, _, k), v in count.items() if k == "module")
    fn = sum(v for (_, _, k), v in count.items() if k == "function")
    print(f"  total: {mod} module-level, {fn} function-level")
    graph: dict[str, set[str]] = {}
    for a, b, _, _ in edges(root, same_package=True):
        graph.setdefault(a, set()).add(b)
    cycles = [sorted(c) for c in strongly_connected(graph) if len(c) > 1]
    print(f"module import cycles: {len(cycles)}")
    for c in cycles:
        print("  " + " <-> ".join(c))
    print("longest functions (lines)")
    for lines, where in longest(root):
        print(f"  {lines:4d}  {where}")


if __name__ == "__main__":
    main()
