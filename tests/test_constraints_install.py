"""scripts/install builds a gate's venv at the versions constraints.txt pins (dry runs).

A gate installed a month after another got whatever PyPI had that day (pyproject names floors
only); the pins make both run what the suite passed on. A bump of the pins is a new release.
"""

from __future__ import annotations

import re
import shutil

import pytest
from test_install import _dry_run, fresh_os_root, snapshot_checkout
from test_install_trixie import release_dir

#: Each test runs the shell installer against a throwaway root (as tests/test_install.py).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    return snapshot_checkout(tmp_path_factory.mktemp("checkout"))


def _venv_lines(stdout: str) -> list[str]:
    venv = stdout.split("[venv]", 1)[1].split("\n[files]")[0]
    return venv.replace("\\", "").splitlines()


def test_the_release_is_installed_with_the_checkouts_constraints(checkout, tmp_path):
    proc = _dry_run(checkout, fresh_os_root(tmp_path / "root"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pip = [x for x in _venv_lines(proc.stdout) if "pip install" in x]
    assert pip and f"-c {checkout}/constraints.txt" in pip[0], pip


def test_the_pip_args_of_an_offline_install_are_kept_beside_the_constraints(checkout, tmp_path):
    wheels = "--no-index --find-links /media/usb/wheels"
    proc = _dry_run(checkout, fresh_os_root(tmp_path / "root"), "--pip-args", wheels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pip = [x for x in _venv_lines(proc.stdout) if "pip install" in x]
    assert pip and f"{wheels} -c {checkout}/constraints.txt" in pip[0], pip


def test_a_bump_of_the_constraints_is_a_new_release(checkout, tmp_path):
    bumped = tmp_path / "bumped"
    shutil.copytree(checkout, bumped)
    pins = bumped / "constraints.txt"
    pins.write_text(re.sub(r"^numpy==\S+", "numpy==9.9.9", pins.read_text(), count=1, flags=re.M))
    before = release_dir(_dry_run(checkout, fresh_os_root(tmp_path / "a")).stdout)
    after = release_dir(_dry_run(bumped, fresh_os_root(tmp_path / "b")).stdout)
    assert before != after
