"""scripts/_bootstrap.sh: what ``./scripts/demo`` and ``./scripts/test`` install into .venv."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

BOOTSTRAP = Path(__file__).resolve().parent.parent / "scripts" / "_bootstrap.sh"

#: Each test runs the shell script (with a stub python).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils"),
]


def _installs(tmp_path: Path, installed: str | None, extras: str) -> list[str]:
    """The pip installs ``kiosk_venv ROOT EXTRAS`` runs on a .venv installed with ``installed``
    extras (None: never installed); the venv's python is a stub that logs its arguments."""
    root = tmp_path / "root"
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n')
    log = tmp_path / "python.log"
    stub = root / ".venv" / "bin" / "python"
    stub.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n')
    stub.chmod(0o755)
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()
    if installed is not None:
        (root / ".venv" / ".kiosk-installed").write_text(f"{digest} [{installed}]\n")
    subprocess.run(
        ["bash", "-c", f'source "{BOOTSTRAP}"; kiosk_venv "$1" "$2"', "_", str(root), extras],
        check=True,
        capture_output=True,
        timeout=60,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return [c for c in calls if c.startswith("-m pip install") and "--upgrade pip" not in c]


def test_the_demo_uses_a_venv_the_tests_installed_without_reinstalling(tmp_path):
    # ./scripts/test then ./scripts/demo: the test extras include everything the demo needs;
    # reinstalling would need the network (and the next ./scripts/test reinstalls again).
    assert _installs(tmp_path, "test", "") == []


@pytest.mark.parametrize(
    ("installed", "extras", "expected"),
    [
        (None, "", "-m pip install -q -e {root}"),
        (None, "test", "-m pip install -q -e {root}[test]"),
        ("", "test", "-m pip install -q -e {root}[test]"),
        ("test", "test", None),
        ("", "", None),
    ],
)
def test_the_venv_is_installed_when_it_lacks_what_the_script_needs(
    tmp_path, installed, extras, expected
):
    root = tmp_path / "root"
    want = [] if expected is None else [expected.format(root=root)]
    assert _installs(tmp_path, installed, extras) == want
