"""No import cycles between the modules of swift_core.

A cycle works only as long as every module in it imports the others late enough (inside a
function, or after its own definitions); reordering one import then breaks start-up, and a cycle
also means the layers of docs/architecture.md are not what the code does. The import-linter
`layers` contract (pyproject.toml) keeps packages in their layers; this test looks at single
modules, imports inside functions included, and names every cycle with the lines that make it.

Left out, on purpose: imports under `if TYPE_CHECKING:` (they never run), and the implicit import
of a package's `__init__` before its modules (as import-linter does: counting it would make every
package whose `__init__` re-exports one of its modules a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from helpers import REPO

ROOT = REPO / "swift_core"

Edges = dict[str, dict[str, int]]  # module -> imported module -> line of the first such import


def module_files(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imported_names(tree: ast.AST, package: str) -> Iterator[tuple[str, str | None, int]]:
    """(module, name imported from it or None, line) of every import in `tree`, at any depth;
    `package` resolves relative imports."""
    skipped = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                yield module, alias.name, node.lineno


def import_graph(root: Path = ROOT) -> Edges:
    modules = module_files(root)
    graph: Edges = {name: {} for name in modules}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: dict[str, int] = {}
        for module, imported, line in imported_names(tree, package):
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` the module mod
            target = f"{module}.{imported}" if f"{module}.{imported}" in modules else module
            while target and target not in modules:  # outside swift_core, or `import a.b` spellings
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.setdefault(target, line)
        graph[name] = targets
    return graph


def strongly_connected(graph: Edges) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def one_cycle(graph: Edges, group: list[str]) -> list[str]:
    """A shortest cycle through the group's first module, staying inside the group."""
    members, start = set(group), group[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child == start:
                    return [*paths[node], start]
                if child in members and child not in paths:
                    paths[child] = [*paths[node], child]
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"{group} is not a cycle")


def describe(graph: Edges, cycle: list[str]) -> str:
    return "\n".join(f"  {a} -> {b} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:]))


def test_the_graph_sees_imports_inside_functions_and_skips_type_checking(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n"
    )
    (package / "a.py").write_text("def f():\n    from pkg.b import x\n")
    (package / "b.py").write_text("from . import a\nx = 1\n")
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.b": 2} and graph["pkg.b"] == {"pkg.a": 1}
    assert graph["pkg"] == {}
    assert strongly_connected(graph) == [["pkg.a", "pkg.b"]]
    assert one_cycle(graph, ["pkg.a", "pkg.b"]) == ["pkg.a", "pkg.b", "pkg.a"]


def test_swift_core_has_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 100 and "swift_core.cli.main" in graph
    cycles = [one_cycle(graph, group) for group in strongly_connected(graph)]
    report = "\n\n".join(
        f"{len(group)} modules import each other ({', '.join(group)}), e.g.:\n{describe(graph, cycle)}\n"
        "every import among them:\n"
        + "\n".join(
            f"  {a} -> {b} (line {graph[a][b]})" for a in group for b in sorted(graph[a]) if b in group
        )
        for group, cycle in zip(strongly_connected(graph), cycles)
    )
    assert not cycles, f"import cycles in swift_core:\n\n{report}"
