"""scripts/install with a config that is not right: refused in one line before anything
acts on it, and never a restart of the services with it (dry runs on throwaway roots)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_install import _dry_run, fresh_os_root, lines_of, snapshot_checkout, tree


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    return snapshot_checkout(tmp_path_factory.mktemp("checkout"))


@pytest.mark.parametrize(
    "text",
    ['[site\nkiosk_id = "gate-7"\n', "\x9b\x00 not text", 'readers = 3\n[gate]\ndriver = "gpio"\n'],
)
def test_a_config_that_is_not_toml_stops_the_install_at_preflight(checkout, tmp_path, text):
    """A TOML syntax error (a typo in a section name) printed seven Python tracebacks, then the
    apt, usb and venv steps went on as if the config named no devices: on a re-run they
    removed the GPIO rule and the UART drop-in and rebuilt the venv without its extras."""
    root = fresh_os_root(tmp_path / "root")
    (root / "etc" / "kiosk").mkdir()
    config = root / "etc" / "kiosk" / "kiosk.toml"
    config.write_bytes(text.encode("utf-8", "surrogateescape"))
    before = tree(root)
    proc = _dry_run(checkout, root)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    if text.startswith("readers"):  # TOML, wrong types: the facts are read, check-config judges
        assert proc.returncode == 0, out
        return
    assert proc.returncode == 1, out
    failed = [line for line in proc.stderr.splitlines() if line.startswith("[preflight] FAIL")]
    assert len(failed) == 1 and "/etc/kiosk/kiosk.toml" in failed[0], out
    assert lines_of(proc.stdout, "apt") == [] and lines_of(proc.stdout, "venv") == []
    assert tree(root) == before


def test_an_invalid_config_stops_the_install_before_units_and_restarts(checkout, tmp_path):
    """check-config failing at the config step was reported, and then the install went on
    to install units, enable and (re)start the services with the invalid config."""
    root = fresh_os_root(tmp_path / "root")
    (root / "etc" / "kiosk").mkdir()
    (root / "etc" / "kiosk" / "kiosk.toml").write_text('[sitee]\nkiosk_id = "gate-7"\n')
    venv_bin = root / "opt" / "kiosk" / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    kiosk = venv_bin / "kiosk"  # the installed kiosk, as a re-run finds it
    kiosk.write_text(
        '#!/bin/sh\necho "kiosk.toml: sitee: Extra inputs are not permitted" >&2\nexit 2\n'
    )
    kiosk.chmod(0o755)
    proc = _dry_run(checkout, root)
    assert proc.returncode == 1
    assert "[config] FAIL" in proc.stderr and "sitee" in proc.stderr
    for step in ("units", "enable", "start"):
        assert lines_of(proc.stdout, step) == [], proc.stdout
