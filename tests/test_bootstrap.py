"""scripts/_bootstrap.sh: what ``./scripts/demo`` and ``./scripts/test`` install into .venv."""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from support import need

BOOTSTRAP = Path(__file__).resolve().parent.parent / "scripts" / "_bootstrap.sh"

#: Each test runs the shell script (with a stub python).
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _coreutils() -> None:
    need(shutil.which("sha256sum") is not None, "sha256sum (coreutils)")


def _installs(
    tmp_path: Path, installed: str | None, extras: str, pins_since: str | None = None
) -> list[str]:
    """The pip installs ``kiosk_venv ROOT EXTRAS`` runs on a .venv installed with ``installed``
    extras (None: never installed); the venv's python is a stub that logs its arguments.
    ``pins_since``: constraints.txt changed to that since the install (a bump)."""
    root = tmp_path / "root"
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (root / "constraints.txt").write_text("numpy==2.4.6\n")
    log = tmp_path / "python.log"
    stub = root / ".venv" / "bin" / "python"
    stub.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n')
    stub.chmod(0o755)
    both = (root / "pyproject.toml").read_bytes() + (root / "constraints.txt").read_bytes()
    digest = hashlib.sha256(both).hexdigest()
    if installed is not None:
        (root / ".venv" / ".kiosk-installed").write_text(f"{digest} [{installed}]\n")
    if pins_since is not None:
        (root / "constraints.txt").write_text(pins_since)
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
        (None, "", "-m pip install -q -e {root} -c {root}/constraints.txt"),
        (None, "test", "-m pip install -q -e {root}[test] -c {root}/constraints.txt"),
        ("", "test", "-m pip install -q -e {root}[test] -c {root}/constraints.txt"),
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


@pytest.mark.parametrize("extras", ["test", ""])
def test_a_bump_of_constraints_txt_reinstalls_at_the_new_pins(tmp_path, extras):
    # A venv installed before the bump keeps the old versions unless the stamp sees the change.
    root = tmp_path / "root"
    target = f"{root}[test]" if extras else str(root)
    assert _installs(tmp_path, "test", extras, pins_since="numpy==2.5.5\n") == [
        f"-m pip install -q -e {target} -c {root}/constraints.txt"
    ]


def _kiosk_apt_line(script: str) -> list[str]:
    """The packages ``scripts/SCRIPT`` hands to ``kiosk_apt`` (its one such line)."""
    text = (BOOTSTRAP.parent / script).read_text(encoding="utf-8")
    lines = text.splitlines()
    return next(shlex.split(line)[1:] for line in lines if line.startswith("kiosk_apt "))


def _kiosk_apt_as_a_user(tmp_path: Path, packages: list[str], installed: str, offered: str):
    """``kiosk_apt PACKAGES`` run by a user without password-less sudo, on an OS where
    ``installed`` are installed and the package lists offer ``offered`` (fake dpkg-query,
    apt-cache, id and sudo): nothing is installed, a missing package is named."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fakes = {
        "dpkg-query": 'for last; do :; done\ncase " $INSTALLED " in *" $last "*) '
        "printf 'install ok installed'; exit 0 ;; esac\nexit 1\n",
        "apt-cache": 'case " $OFFERED " in *" $2 "*) echo "  Candidate: 1.0-1" ;;'
        ' *) echo "  Candidate: (none)" ;; esac\n',
        "id": "echo 1000\n",
        "sudo": "exit 1\n",
    }
    for name, body in fakes.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "INSTALLED": installed, "OFFERED": offered}
    return subprocess.run(
        ["bash", "-c", f'source "{BOOTSTRAP}"; kiosk_apt "$@"', "_", *packages],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


TRIXIE_TEST_PACKAGES = (
    "libzbar0t64 chromium fonts-noto-cjk ghostscript shellcheck systemd postgresql"
    " passwd openssl mount e2fsprogs util-linux curl coreutils"
)


@pytest.mark.parametrize("script", ["demo", "test"])
def test_on_debian_13_the_zbar_library_it_has_counts_as_installed(tmp_path, script):
    # Debian 13 (Raspberry Pi OS Trixie) has libzbar0t64, no libzbar0: ./scripts/demo asked
    # for libzbar0 again at every start, and stopped there for a user without sudo.
    proc = _kiosk_apt_as_a_user(
        tmp_path, _kiosk_apt_line(script), TRIXIE_TEST_PACKAGES, TRIXIE_TEST_PACKAGES
    )
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.parametrize(
    ("offered", "named"), [("libzbar0t64", "libzbar0t64"), ("libzbar0", "libzbar0")]
)
def test_a_missing_zbar_library_is_named_as_this_release_offers_it(tmp_path, offered, named):
    proc = _kiosk_apt_as_a_user(tmp_path, _kiosk_apt_line("demo"), "", offered)
    assert proc.returncode == 1
    assert f"  sudo apt-get install -y {named}\n" in proc.stderr


#: The package each tool the tests look up (``shutil.which``) comes in, on Debian.
TOOL_PACKAGES = {
    "curl": "curl",
    "gs": "ghostscript",
    "mkfs.ext4": "e2fsprogs",
    "mount": "mount",
    "openssl": "openssl",
    "setpriv": "util-linux",
    "sha256sum": "coreutils",
    "shellcheck": "shellcheck",
    "systemctl": "systemd",
    "systemd-analyze": "systemd",
    "unshare": "util-linux",
    "useradd": "passwd",
}


def test_the_test_script_installs_every_tool_the_tests_look_up():
    """CI fails a test whose tool is missing (support.need): before, mkfs.ext4, setpriv,
    useradd and openssl came only with whatever the CI image happened to carry."""
    tests = Path(__file__).resolve().parent
    looked_up = {
        tool
        for path in tests.glob("*.py")
        for tool in re.findall(r'shutil\.which\("([^"]+)"\)', path.read_text(encoding="utf-8"))
    }
    assert sorted(looked_up - set(TOOL_PACKAGES)) == [], "name their package in TOOL_PACKAGES"
    installed = {name for word in _kiosk_apt_line("test") for name in word.split("|")}
    assert sorted(set(TOOL_PACKAGES.values()) - installed) == []


def test_ci_refuses_to_run_the_suite_without_root(tmp_path):
    """Before: .ci/run as a user skipped the OS packages and ran the suite anyway, whose
    install, card and file-owner tests then skipped. Now it stops, saying why."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"id": "echo 1000\n", "apt-get": "echo apt-get ran >&2; exit 1\n"}.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    proc = subprocess.run(
        ["bash", str(BOOTSTRAP.parent.parent / ".ci" / "run")],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        ".ci/run: CI runs as root (the real install, mounts, files given to other users);"
        " this is uid 1000\n"
    )


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_the_test_script_answers_help_without_running_anything(tmp_path, flag):
    """Before: ``./scripts/test --help`` ran apt, the venv, ruff, import-linter, mypy and
    shellcheck, then printed pytest's usage. Now it prints its own usage and stops."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ran = tmp_path / "ran"
    for name in ("apt-get", "dpkg-query", "shellcheck", "git"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho {name} >> "{ran}"\nexit 1\n')
        (bin_dir / name).chmod(0o755)
    proc = subprocess.run(
        ["bash", str(BOOTSTRAP.parent / "test"), flag],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
    )
    assert proc.returncode == 0
    assert not ran.exists()
    assert proc.stdout.startswith("usage: scripts/test [PYTEST ARGS...]")
    for step in ("ruff", "import-linter", "mypy", "shellcheck", "pytest"):
        assert step in proc.stdout
    assert 'pytest -n 2 -m "not slow and not browser"' in proc.stdout
