"""Architecture rules that are not import rules (those are import-linter's, in pyproject)."""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest
from js_functions import JsScanError, functions, top_level_code, top_level_lines

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
        for node in _statements(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    where = path.relative_to(ROOT)
                    found.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return found


def _statements(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` but the expressions and what is in them: a ``def`` is a
    statement, never inside an expression (a ``lambda`` is one), so each function is met as
    ``ast.walk`` meets it, without walking the expressions (most of the nodes, ~0.35 s of CPU
    over the five packages), in ``ast.walk``'s order."""
    todo = deque([tree])
    while todo:
        node = todo.popleft()
        yield node
        todo.extend(
            child for child in ast.iter_child_nodes(node) if not isinstance(child, ast.expr)
        )


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


#: The project's own scripts, held to the same rule.
STATIC_JS = ROOT / "ui" / "static"


def long_js_functions(script: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``file:line name (N lines)`` for each function of a script longer than ``limit``
    (``tests/js_functions.py``; nested functions counted within their parent), and the code
    outside every function as one more (``<top level>``: its lines that carry code)."""
    where = script.relative_to(ROOT)
    text = script.read_text(encoding="utf-8")
    found = [
        f"{where}:{f.first} {f.name} ({f.lines} lines)" for f in functions(text) if f.lines > limit
    ]
    top = top_level_code(text)  # one unit: the code outside every function
    return found + (
        [f"{where}:{top[0]} <top level> ({len(top)} lines)"] if len(top) > limit else []
    )


@pytest.mark.parametrize("script", sorted(p.name for p in STATIC_JS.glob("*.js")))
def test_no_script_function_is_over_80_lines(script):
    offenders = long_js_functions(STATIC_JS / script)
    assert offenders == [], "split these:\n" + "\n".join(offenders)


def test_the_scripts_are_checked():
    assert {"guard.js", "kiosk.js", "stream.js"} <= {p.name for p in STATIC_JS.glob("*.js")}


def _js_body(lines: int) -> str:
    return "\n".join(f"  x{i} += {i};" for i in range(lines - 2))


def test_the_script_check_finds_a_long_function_and_names_where(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    script = tmp_path / "page.js"
    script.write_text(
        f"function short() {{\n  return 1;\n}}\n"
        f"function long(a) {{\n{_js_body(MAX_FUNCTION_LINES + 1)}\n}}\n"
        f"const fine = (e) => {{\n{_js_body(MAX_FUNCTION_LINES)}\n}};\n"
    )
    assert long_js_functions(script) == [f"page.js:4 long ({MAX_FUNCTION_LINES + 1} lines)"]


def test_the_script_check_counts_nested_functions_within_their_parent():
    inner = f"  const f = function () {{\n{_js_body(MAX_FUNCTION_LINES - 5)}\n  }};"
    found = functions(f"(function () {{\n{inner}\n  f();\n}})();\n")
    assert [(f.name, f.first, f.lines) for f in found] == [
        ("<anonymous>", 1, MAX_FUNCTION_LINES - 2),
        ("<anonymous>", 2, MAX_FUNCTION_LINES - 5),
    ]


def test_the_script_check_reads_past_braces_in_strings_comments_templates_and_regexes():
    script = """\
function a(x) {
  const s = "}" + '{' + "\\"}";  // a } in a comment
  /* { not code } */
  const t = `${x ? "}" : `{${ { k: "}" }.k }`} } {`;
  const r = x.replace(/[}{]/g, "").split(/\\}/);
  const q = x / 2 / 3;
  if (q) { return r; }
  for (const k of [1]) { t += k; }
  return t;
}
const o = {
  m(y) {
    return y;
  },
  n: (z) => {
    return z;
  },
  e: (w) => w + 1,
};
"""
    found = functions(script)
    assert [(f.name, f.first, f.last) for f in found] == [
        ("a", 1, 10), ("m", 12, 14), ("<arrow>", 15, 17),
    ]  # fmt: skip


def test_the_script_check_finds_methods_with_a_computed_or_a_string_name():
    """``[Symbol.iterator]() {``, ``async [k]() {`` and ``'render'() {`` are methods too: a
    92-line one went unseen."""
    script = """\
const o = {
  [Symbol.iterator]() {
    return this;
  },
  async [k]() {
    return 1;
  },
  'render'(v) {
    return v / 2 / 3;
  },
  "x y": 1,
};
"""
    found = functions(script)
    assert [(f.name, f.first, f.last) for f in found] == [
        ("[Symbol.iterator]", 2, 4), ("[k]", 5, 7), ("'render'", 8, 10),
    ]  # fmt: skip
    body = _js_body(MAX_FUNCTION_LINES + 12)
    long_one = functions(f"class C {{\n  'render'() {{\n{body}\n  }}\n}}\n")
    assert [f.lines for f in long_one] == [MAX_FUNCTION_LINES + 12]


def test_the_script_check_holds_top_level_code_to_the_limit(tmp_path, monkeypatch):
    """Code outside every function body (shared state, calls: a module's top level, or a
    top-level block) is one unit held to the same limit; function declarations count as
    functions, not there."""
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    script = tmp_path / "page.js"
    shared = "\n".join(f"let x{i} = {i};" for i in range(MAX_FUNCTION_LINES - 1))
    fn = f"function f() {{\n{_js_body(MAX_FUNCTION_LINES)}\n}}\n"
    script.write_text(f"{shared}\n{fn}f();\n")
    assert top_level_lines(script.read_text()) == MAX_FUNCTION_LINES
    assert long_js_functions(script) == []
    script.write_text(f"{{\n{shared}\n{fn}f();\n}}\n")  # a block is top-level code too
    assert long_js_functions(script) == [f"page.js:1 <top level> ({MAX_FUNCTION_LINES + 2} lines)"]


def test_the_pages_load_their_scripts_as_modules_with_no_wrapping_block():
    """The console's and the kiosk's scripts are ES modules (their names stay in the file
    without a wrapping block), and open no top-level block."""
    templates = ROOT / "ui" / "templates"
    for template, script in (("kiosk.html", "kiosk.js"), ("guard_base.html", "guard.js")):
        assert f'<script type="module" src="/static/{script}' in (templates / template).read_text()
        text = (STATIC_JS / script).read_text(encoding="utf-8")
        lines = text.splitlines()
        assert [n for n in top_level_code(text) if lines[n - 1].strip() in "{}"] == [], script


@pytest.mark.parametrize(
    "text", ['function f() { return "}', "function f() {", "f(`${", "x = (/ab", "a(]", "}"]
)
def test_the_script_check_refuses_what_it_cannot_read(text):
    with pytest.raises(JsScanError):
        functions(text)


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
