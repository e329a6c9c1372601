"""Architecture rules that are not import rules (those are import-linter's, in pyproject)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: No production function is longer than this many lines (decorators excluded, nested
#: functions counted within their parent).
MAX_FUNCTION_LINES = 80

#: Every production package.
CHECKED_PACKAGES = ["kiosk", "drivers", "ui", "checkpoint", "office"]


def long_functions(package_dir: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``file:line name (N lines)`` for each function in the package longer than ``limit``."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    where = path.relative_to(ROOT)
                    found.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return found


@pytest.mark.parametrize("package", CHECKED_PACKAGES)
def test_no_production_function_is_over_80_lines(package):
    offenders = long_functions(ROOT / package)
    assert offenders == [], "split these:\n" + "\n".join(offenders)


def test_the_length_check_finds_a_long_function_and_names_where(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(
        f"def short():\n    return 1\n\n\nasync def long():\n{body}\n"
    )
    assert long_functions(tmp_path / "pkg") == [
        f"pkg/mod.py:5 long ({MAX_FUNCTION_LINES + 1} lines)"
    ]


def import_cycles(package: str) -> list[list[str]]:
    """Every set of modules of ``package`` that import each other in a circle (strongly
    connected components of the import graph, a package's ``__init__`` included, imports
    inside functions included)."""
    import grimp

    graph = grimp.build_graph(package, cache_dir=None)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & set(modules)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return cycles


#: Packages checked for import cycles including a module and its own package's ``__init__``
#: (import-linter's acyclic_siblings contract checks the rest for every package). kiosk joins
#: once kiosk.config.fleet no longer imports kiosk.config.
CYCLE_FREE_PACKAGES = ["checkpoint", "office", "drivers", "ui"]


@pytest.mark.parametrize("package", CYCLE_FREE_PACKAGES)
def test_no_import_cycle_in_the_package(package):
    assert import_cycles(package) == []


def test_the_cycle_finder_sees_a_module_importing_its_package(tmp_path, monkeypatch):
    pkg = tmp_path / "loopy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from loopy.child import VALUE\n")
    (pkg / "child.py").write_text("VALUE = 1\n\ndef late():\n    from loopy import VALUE\n")
    (pkg / "leaf.py").write_text("import loopy.child\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("loopy") == [["loopy", "loopy.child"]]
