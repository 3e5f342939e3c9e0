"""No import cycle between the package's modules (issue 23, item 6).

Every module of ``dsanet`` is parsed with ``ast``; each ``import`` / ``from ... import`` of a dsanet
module is an edge, wherever it stands: at module level, inside a function, under
``if TYPE_CHECKING:`` (a cycle for type checkers and readers alike). ``from pkg import name`` is an
edge to ``pkg.name`` when that is a module, else to ``pkg``. Importing ``pkg.mod`` also runs
``pkg/__init__.py``; that implicit edge is not counted (every package would be in a cycle with
its submodules). The graph must have no cycle; a failure names each cycle found.
"""
from __future__ import annotations

import ast
from pathlib import Path

import dsanet

PACKAGE = Path(dsanet.__file__).resolve().parent


def modules(root: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's ``__init__``) for every module under ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _absolute(module: str, is_pkg: bool, node: ast.ImportFrom) -> str | None:
    if not node.level:
        return node.module
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports (module- and function-level alike)."""
    mods = modules(root)
    top = root.name

    def known(name: str) -> str:          # "dsanet.config.Config" -> "dsanet.config"
        while name not in mods and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    graph = {}
    for mod, (path, is_pkg) in mods.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                edges.update(known(a.name) for a in node.names if a.name.split(".")[0] == top)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(mod, is_pkg, node)
                if not base or base.split(".")[0] != top:
                    continue
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    edges.add(sub if sub in mods else known(base))
        edges.discard(mod)
        graph[mod] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) through each strongly connected group of modules (a group
    of more than two may hold further cycles: :func:`groups` lists its members)."""
    return [_cycle_in(graph, g) for g in groups(graph)]


def groups(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one module (each is in a cycle)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):                         # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _cycle_in(graph, group: set[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected group (breadth first)."""
    start = min(group)
    paths, seen = [[start]], {start}
    while paths:
        nxt = []
        for path in paths:
            for w in sorted(graph[path[-1]] & group):
                if w == start:
                    return path + [start]
                if w not in seen:
                    seen.add(w)
                    nxt.append(path + [w])
        paths = nxt
    raise AssertionError(f"no cycle in {sorted(group)}")


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    found = [f"{' -> '.join(_cycle_in(graph, g))} (modules in a cycle together: "
             f"{', '.join(sorted(g))})" for g in groups(graph)]
    assert not found, "import cycles: " + "; ".join(found)


def test_the_walk_sees_every_kind_of_import_and_names_a_cycle(tmp_path):
    """A cycle made of a function-level import and one under TYPE_CHECKING is found and named."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "def f():\n    from .sub import b\n",
        "sub/__init__.py": "",
        "sub/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import f\n",
        "c.py": "import pkg.a\nfrom pkg.sub.b import x\n",
        "d.py": "from . import c\n",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.a"}
    assert graph["pkg.c"] == {"pkg.a", "pkg.sub.b"} and graph["pkg.d"] == {"pkg.c"}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.a"]]
