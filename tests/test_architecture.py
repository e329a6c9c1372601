"""Architecture rules that are not import rules (those are import-linter's, in pyproject)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: No production function is longer than this many lines (decorators excluded, nested
#: functions counted within their parent).
MAX_FUNCTION_LINES = 80

#: The packages held to it so far. kiosk, drivers and ui join once their offenders are split.
CHECKED_PACKAGES = ["checkpoint", "office"]


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
