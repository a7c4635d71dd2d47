"""helpers: no import circle among its modules, counting the imports inside functions too.

A circle is a module that imports (at import time or inside a function) a module that, directly or
through others, imports it back. The graph is read from the source with ``ast``, not by importing it.
"""

import ast
from pathlib import Path

from conftest import REPO_ROOT

HELPERS = REPO_ROOT / "helpers"



def module_names() -> dict[str, Path]:
    """``{"helpers.llm_server.engine": path, ...}``: every module of helpers (a package by its own name)."""
    names = {}
    for path in sorted(HELPERS.rglob("*.py")):
        parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The helpers modules that module ``name`` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: from the package, or level - 1 packages above it
                above = package.rsplit(".", node.level - 1)[0]
                base = f"{above}.{base}" if base else above
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:  # from helpers import llm
                    imported.add(submodule)
                elif base in modules:  # from helpers.llm import LOCAL_MODEL
                    imported.add(base)
    return imported - {name}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph (``[a, b, ..., a]``), or None: a depth-first search for an edge back."""
    done, path = set(), []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        path.append(module)
        for target in sorted(graph[module]):
            if circle := visit(target):
                return circle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        if circle := visit(module):
            return circle
    return None


def test_the_graph_sees_imports_at_import_time_and_inside_functions():
    graph = import_graph()
    assert "helpers.local_model" in graph["helpers.llm"]  # at import time
    assert "helpers.llm_server" in graph["helpers.llm"]  # inside functions
    assert "helpers.llm_server.schemas" in graph["helpers.llm_server.server"]  # from a package import a module


def test_find_circle_finds_one():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_among_helpers_modules():
    circle = find_circle(import_graph())
    assert circle is None, "import circle: " + " -> ".join(circle)
