"""What a test needs from the machine (``support.need``): a skip on a developer machine
without it, a failure in CI. Before, the install, upgrade and full-card tests gated on a plain
skip: CI run without root (or without mkfs.ext4, setpriv, systemd-analyze) reported them
skipped and passed, with none of them run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import mounted, need

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def not_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)


def test_what_is_missing_fails_in_ci_and_is_skipped_elsewhere(monkeypatch):
    need(True, "anything")  # there: nothing happens
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"^mkfs.ext4 is required in CI \(.ci/run"):
        need(False, "mkfs.ext4")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="^needs mkfs.ext4$"):
        need(False, "mkfs.ext4")


def test_a_test_that_needs_root_fails_in_ci_without_it(monkeypatch, not_root, request):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="^root is required in CI"):
        request.getfixturevalue("as_root")


def test_a_real_file_system_without_root_fails_in_ci(monkeypatch, not_root, tmp_path):
    monkeypatch.setenv("CI", "true")
    with (
        pytest.raises(pytest.fail.Exception, match="^root for a real file system is required"),
        mounted(tmp_path / "card", "-t", "tmpfs", "tmpfs"),
    ):
        raise AssertionError("mounted without root")
    assert not (tmp_path / "card").exists()


def test_a_mount_the_machine_refuses_fails_in_ci_naming_why(monkeypatch, tmp_path):
    """Root in a container that refuses mounts: before, 'cannot mount here' was a skip."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    refused = subprocess.CompletedProcess(["mount"], 32, b"", b"mount: permission denied\n")
    monkeypatch.setattr("support.subprocess.run", lambda *a, **k: refused)
    monkeypatch.setattr("support.shutil.which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setenv("CI", "true")
    with (
        pytest.raises(pytest.fail.Exception, match=r"mount: permission denied\) is required"),
        mounted(tmp_path / "card", "-t", "tmpfs", "tmpfs"),
    ):
        raise AssertionError("yielded a mount that failed")


FAKE_UID = """\
import os
os.geteuid = lambda: 1000
"""


@pytest.mark.slow  # integration: a pytest of its own
def test_under_ci_without_root_the_install_and_card_tests_fail_not_skip(tmp_path):
    """The review's repro: CI=true and a uid of 1000 (a plugin). Before: every one of these
    skipped and the run passed."""
    (tmp_path / "fakeuid.py").write_text(FAKE_UID)
    gated = [
        "tests/test_install.py::test_real_install_sets_up_the_pi",
        "tests/test_install_upgrade.py::test_an_upgrade_cut_off_in_pip_leaves_the_old_program_starting",
        "tests/test_operator_faults.py::test_a_log_on_a_card_mounted_read_only"
        "_is_a_fault_before_the_first_passage",
        "tests/test_operator_faults.py::test_a_card_that_fails_to_read_only_while_idle"
        "_is_a_fault_before_the_next_passage",
        "tests/test_operations_week.py::test_a_log_left_owned_by_another_user"
        "_is_named_when_it_cannot_be_opened",
        "tests/test_backup.py::test_the_config_comes_back_with_the_group_the_service_reads_it_by",
    ]
    env = dict(os.environ, CI="true", PYTHONPATH=str(tmp_path))
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "fakeuid", "-p", "no:cacheprovider", "-q",
         "-m", "", "-rfEs", *gated],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert out.splitlines()[-1].startswith("4 failed, 2 errors in "), out
    assert "root for the real install is required in CI" in out
    assert "root for a real file system is required in CI" in out
    assert "root for a loop-mounted ext4 is required in CI" in out
    assert "root to give the file to another user is required in CI" in out
    assert "root to give a file a group is required in CI" in out
