"""scripts/install on Raspberry Pi OS Trixie (Debian 13) beside Bookworm (Debian 12): the
package names each release has (docs/install.md, "Which Raspberry Pi OS"). Debian 13 renamed
libraries in its move to a 64-bit time_t: zbar's is ``libzbar0t64`` there, ``libzbar0`` on
Bookworm. Driven as test_install.py does: the script against a fake OS root, or on this host
with a dry run whose ``dpkg-query`` and ``apt-cache`` are fakes (what is installed, what the
package lists offer)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from test_install import (
    _dry_run,
    fresh_os_root,
    lines_of,
    run,
    run_installer_functions,
    snapshot_checkout,
)

pytestmark = pytest.mark.slow  # runs bash and the config check: ~1-2 s each (CI runs it)

# Everything the [apt] step wants, under the names Trixie gives them.
TRIXIE_INSTALLED = (
    "libzbar0t64",
    "python3-venv",
    "curl",
    "i2c-tools",
    "cage",
    "xwayland",
    "fonts-noto-cjk",
    "chromium",
)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    return snapshot_checkout(tmp_path_factory.mktemp("checkout"))


def dpkg_status(root: Path, packages: tuple[str, ...]) -> None:
    """``var/lib/dpkg/status`` of ``root`` with ``packages`` installed (dpkg-query reads it)."""
    admin = root / "var" / "lib" / "dpkg"
    admin.mkdir(parents=True)
    (admin / "status").write_text(
        "".join(
            f"Package: {name}\nStatus: install ok installed\nPriority: optional\n"
            f"Architecture: arm64\nVersion: 1.0\nDescription: {name}\n\n"
            for name in packages
        )
    )


def fake_apt(tmp_path: Path, installed: tuple[str, ...], offered: tuple[str, ...]) -> dict:
    """PATH with a ``dpkg-query`` that knows ``installed`` only and an ``apt-cache policy``
    with a candidate for ``offered`` only (no candidate for any other name: a name this
    release does not have)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dpkg-query").write_text(
        "#!/bin/sh\n"
        'for last; do :; done\ncase " $INSTALLED " in *" $last "*) '
        "printf 'install ok installed'; exit 0 ;; esac\n"
        'echo "dpkg-query: no packages found matching $last" >&2; exit 1\n'
    )
    (bin_dir / "apt-cache").write_text(
        "#!/bin/sh\n"
        '[ "$1" = policy ] || exit 100\n'
        'echo "$2:"; echo "  Installed: (none)"\n'
        'case " $OFFERED " in *" $2 "*) echo "  Candidate: 1.0-1" ;;'
        ' *) echo "  Candidate: (none)" ;; esac\n'
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return dict(
        os.environ,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        INSTALLED=" ".join(installed),
        OFFERED=" ".join(offered),
    )


def test_a_trixie_root_with_libzbar0t64_installed_needs_no_libzbar0(checkout, tmp_path):
    root = fresh_os_root(tmp_path / "root")
    dpkg_status(root, TRIXIE_INSTALLED)
    proc = _dry_run(checkout, root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    apt = lines_of(proc.stdout, "apt")
    assert apt and apt[0].startswith("[apt] ok: installed: "), apt
    assert "libzbar0t64" in apt[0]


def test_a_bookworm_root_with_libzbar0_installed_needs_nothing(checkout, tmp_path):
    root = fresh_os_root(tmp_path / "root")
    bookworm = tuple("libzbar0" if p == "libzbar0t64" else p for p in TRIXIE_INSTALLED)
    dpkg_status(root, bookworm)
    apt = lines_of(_dry_run(checkout, root).stdout, "apt")
    assert apt and apt[0].startswith("[apt] ok: installed: "), apt


@pytest.mark.parametrize(
    ("offered", "wanted"),
    [
        (("libzbar0t64", "chromium"), "libzbar0t64"),  # Trixie: the t64 name only
        (("libzbar0", "chromium"), "libzbar0"),  # Bookworm
    ],
)
def test_on_the_pi_the_zbar_library_is_asked_for_by_the_name_this_release_has(
    checkout, tmp_path, offered, wanted
):
    installed = tuple(p for p in TRIXIE_INSTALLED if p != "libzbar0t64")
    env = fake_apt(tmp_path, installed, offered)
    # The live system (root /), dry run: nothing is installed or changed.
    proc = run(checkout / "scripts" / "install", "--dry-run", env=env)
    apt = lines_of(proc.stdout, "apt")
    assert apt == [f"[apt] would: install packages: {wanted}"], proc.stdout + proc.stderr


def python_313(tmp_path: Path) -> Path:
    """A python3 that says it is 3.13 (Trixie's) when the installer asks its version, and is
    this machine's Python for everything else (the config check, tomllib)."""
    import sys

    fake = tmp_path / "python3.13"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$2" in *print*version_info*) echo 3.13; exit 0 ;; esac\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    fake.chmod(0o755)
    return fake


def test_a_gpio_relay_on_python_3_13_gets_lgpio_from_the_os_not_a_pypi_build(checkout, tmp_path):
    # lgpio on PyPI (0.2.2.0) has wheels up to CPython 3.12: on Trixie's 3.13 pip built it
    # from source (swig, liblgpio: on no Pi) and [venv] failed; Raspberry Pi OS's python3-lgpio
    # is built for its Python and the venv sees the system's packages.
    cfg = tmp_path / "gpio.toml"
    cfg.write_text('[gate.driver]\ntype = "gpio"\npin = 17\n')
    env = dict(os.environ, KIOSK_PYTHON=str(python_313(tmp_path)))
    proc = _dry_run(checkout, fresh_os_root(tmp_path / "root"), "--config", str(cfg), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "python3-lgpio" in lines_of(proc.stdout, "apt")[0]


def test_no_gpio_relay_on_python_3_13_needs_no_python3_lgpio(checkout, tmp_path):
    env = dict(os.environ, KIOSK_PYTHON=str(python_313(tmp_path)))
    proc = _dry_run(checkout, fresh_os_root(tmp_path / "root"), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "python3-lgpio" not in proc.stdout


def test_pip_asks_for_lgpio_only_where_pypi_has_a_wheel_for_the_python():
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((checkout_root() / "pyproject.toml").read_text())["project"]
    (lgpio,) = [Requirement(r) for r in project["optional-dependencies"]["gpio"]]
    assert lgpio.name == "lgpio" and lgpio.marker is not None
    assert lgpio.marker.evaluate({"python_version": "3.11"})  # Bookworm
    assert not lgpio.marker.evaluate({"python_version": "3.13"})  # Trixie: python3-lgpio


def checkout_root() -> Path:
    return Path(__file__).resolve().parent.parent


def release_dir(stdout: str) -> str:
    """The release a dry run would build (``[venv] would: create venv .../releases/ID/venv``)."""
    match = re.search(r"\[venv\] would: create venv (\S+)/venv", stdout)
    assert match, stdout
    return match.group(1)


def test_a_release_is_built_again_for_another_python(checkout, tmp_path):
    # A Bookworm gate taken to Trixie by `apt full-upgrade` (Python 3.11 -> 3.13): its venv
    # holds 3.11's packages and no longer starts; the install run again said the checkout was
    # installed (same release id) and left the gate down. The venv's Python is in the id.
    root = fresh_os_root(tmp_path / "root")
    on_311 = _dry_run(checkout, root)
    env = dict(os.environ, KIOSK_PYTHON=str(python_313(tmp_path)))
    on_313 = _dry_run(checkout, root, env=env)
    assert on_311.returncode == on_313.returncode == 0, on_313.stdout + on_313.stderr
    assert release_dir(on_311.stdout) != release_dir(on_313.stdout)
    assert release_dir(on_311.stdout) == release_dir(_dry_run(checkout, root).stdout)


def picamera2_at(tmp_path: Path, version: str) -> dict:
    """The live system (root /) with every package the Pi camera's [apt] step wants installed,
    python3-picamera2 at ``version`` (a ``dpkg-query`` that answers its status and version)."""
    env = fake_apt(tmp_path, (*TRIXIE_INSTALLED, "python3-picamera2"), ())
    (tmp_path / "bin" / "dpkg-query").write_text(
        "#!/bin/sh\n"
        'for last; do :; done\ncase " $INSTALLED " in *" $last "*) ;; *) exit 1 ;; esac\n'
        'case "$*" in *Version*) printf %s "$PICAMERA2" ;; *) printf "install ok installed" ;;'
        " esac\n"
    )
    cfg = tmp_path / "pi.toml"
    cfg.write_text('[[readers.sources]]\ntype = "picamera"\n')
    return env | {"PICAMERA2": version, "KIOSK_TEST_CONFIG": str(cfg)}


@pytest.mark.parametrize(
    ("version", "said"),
    [
        # The first Bookworm images: no wait() timeout, the reader a fault until upgraded.
        ("0.3.12-2", "[apt] would: upgrade python3-picamera2 0.3.12-2 (the Pi camera needs"),
        ("0.3.19-1", "[apt] would: upgrade python3-picamera2 0.3.19-1"),
        ("0.3.20-1", "[apt] ok: python3-picamera2 0.3.20-1 (the Pi camera needs 0.3.20"),
        ("0.3.27-1+rpt1", "[apt] ok: python3-picamera2 0.3.27-1+rpt1"),
    ],
)
def test_an_installed_picamera2_too_old_for_the_reader_is_upgraded(
    checkout, tmp_path, version, said
):
    """A re-run of the installer on a first-Bookworm Pi said python3-picamera2 'installed' and
    kept 0.3.12, whose wait() has no timeout: the Pi camera reader stayed a fault saying to
    upgrade it. It is upgraded (apt-get install --only-upgrade) when older than 0.3.20."""
    env = picamera2_at(tmp_path, version)
    proc = run(checkout / "scripts" / "install", "--dry-run", "--config", env["KIOSK_TEST_CONFIG"],
               env=env)  # fmt: skip
    apt = lines_of(proc.stdout, "apt")
    assert any(line.startswith(said) for line in apt), proc.stdout + proc.stderr
    upgrading = [line for line in apt if "upgrade" in line]
    assert bool(upgrading) == said.startswith("[apt] would: upgrade")
    if upgrading:
        assert "--only-upgrade python3-picamera2" in proc.stdout


@pytest.mark.parametrize(("offered", "said"), [("0.3.19-1", "FAIL"), ("0.3.21-1", "did")])
def test_an_upgrade_of_picamera2_that_brought_no_newer_one_says_it_failed(
    checkout, tmp_path, offered, said
):
    """An offline mirror (or a failed apt-get update) offers no newer python3-picamera2:
    ``apt-get install --only-upgrade`` then succeeds doing nothing, and the install said "did:
    upgrade python3-picamera2" while 0.3.19 stayed, the Pi camera reader a fault. The version
    is read again after the upgrade."""
    env = picamera2_at(tmp_path, "0.3.19-1")
    installed = tmp_path / "picamera2-version"
    installed.write_text("0.3.19-1")
    bin_dir = tmp_path / "bin"
    (bin_dir / "dpkg-query").write_text(
        '#!/bin/sh\ncase "$*" in *Version*) cat "$VERSION_FILE" ;;'
        ' *) printf "install ok installed" ;; esac\n'
    )
    (bin_dir / "apt-get").write_text(
        '#!/bin/sh\ncase "$*" in *--only-upgrade*) printf %s "$OFFERED_VERSION" >"$VERSION_FILE"'
        " ;; esac\nexit 0\n"
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env |= {"VERSION_FILE": str(installed), "OFFERED_VERSION": offered}
    script = checkout / "scripts" / "install"
    body = 'STEP=apt\npicamera2_recent || true\nprintf "failed: %d\\n" ${#FAILED[@]}\n'
    proc = run_installer_functions(script, ("PICAMERA2_MIN",), body, env)
    out = proc.stdout + proc.stderr
    assert "[apt] did: upgrade python3-picamera2 0.3.19-1" in out, out
    if said == "FAIL":
        assert "[apt] FAIL: python3-picamera2 is still 0.3.19-1 after the upgrade" in out, out
        assert "failed: 1" in out
    else:
        assert "FAIL" not in out and "failed: 0" in out, out
