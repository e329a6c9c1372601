"""scripts/install with a config that is not right: refused in one line before anything
acts on it, and never a restart of the services with it (dry runs on throwaway roots)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_install import _dry_run, fresh_os_root, lines_of, snapshot_checkout, tree

from checkpoint.cli import main


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    return snapshot_checkout(tmp_path_factory.mktemp("checkout"))


@pytest.mark.parametrize(
    "text",
    ['[site\nkiosk_id = "gate-7"\n', "\x9b\x00 not text", 'readers = 3\n[gate]\ndriver = "gpio"\n'],
)
@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
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
    assert proc.returncode == 1, out
    failed = [line for line in proc.stderr.splitlines() if line.startswith("[preflight] FAIL")]
    assert len(failed) == 1 and "/etc/kiosk/kiosk.toml" in failed[0], out
    assert lines_of(proc.stdout, "apt") == [] and lines_of(proc.stdout, "venv") == []
    assert tree(root) == before


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_an_invalid_config_stops_the_install_before_units_and_restarts(checkout, tmp_path):
    """check-config failing at the config step was reported, and then the install went on
    to install units, enable and (re)start the services with the invalid config."""
    root = fresh_os_root(tmp_path / "root")
    (root / "etc" / "kiosk").mkdir()
    # Valid to the checkout's own check at preflight; the installed kiosk (this stub) refuses it.
    (root / "etc" / "kiosk" / "kiosk.toml").write_text('[site]\nkiosk_id = "gate-7"\n')
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


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[gate]\npulse_ms = "3000"\n',
            "gate.pulse_ms: should be an integer (got a string: write 3000 without the quotes)",
        ),
        (
            "[thermometer.thermometry]\nfever_threshold_c = 45\n",
            "thermometer.thermometry.fever_threshold_c: should be at most 40 (got 45)",
        ),
        (
            '[sitee]\nkiosk_id = "gate-7"\n',
            "sitee: unknown key (check its spelling and the table it is in)",
        ),
        (
            'readers = 3\n[gate]\ndriver = "gpio"\n',
            "gate.driver: should be a table (got a string)",
        ),
        (
            '[policy]\ntrust_dir = "/srv/keys"\n',
            "policy.trust_dir: /srv/keys is not an existing directory",
        ),
    ],
    ids=["wrong-type", "out-of-bounds", "unknown-section", "not-a-table", "missing-path"],
)
@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_dry_run_checks_the_config_as_the_daemon_will_before_anything(
    checkout, tmp_path, capsys, text, problem
):
    """The dry run read the config's TOML syntax only: a config the daemon refuses went
    through every step (exit 0) until the installed venv's check-config, after apt, the users
    and the venv; a dry run on a fresh Pi never checked it at all."""
    config = tmp_path / "kiosk.toml"
    config.write_text(text)
    root = fresh_os_root(tmp_path / "root")
    before = tree(root)
    proc = _dry_run(checkout, root, "--config", str(config))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{config}: {problem}" in proc.stderr.splitlines()
    failed = lines_of(proc.stderr, "preflight")
    assert len(failed) == 1 and "is not valid" in failed[0] and str(config) in failed[0]
    assert [line for line in proc.stdout.splitlines() if not line.startswith("[preflight]")] == [
        "",
        "install: dry run: nothing was changed.",
    ]
    assert tree(root) == before
    if "trust_dir" not in text:  # the same lines as kiosk check-config (paths: its --root)
        assert main(["check-config", str(config)]) == 2
        assert set(capsys.readouterr().err.splitlines()) <= set(proc.stderr.splitlines())


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_the_example_passes_the_early_check_with_the_folders_the_install_makes(checkout, tmp_path):
    """The example names trust_dir = /var/lib/kiosk/trust, which the dirs step makes later."""
    proc = _dry_run(checkout, fresh_os_root(tmp_path / "root"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ok = [line for line in lines_of(proc.stdout, "preflight") if "config valid: " in line]
    assert len(ok) == 1 and "kiosk_id=gate-1" in ok[0], proc.stdout


@pytest.mark.slow  # makes a real venv (ensurepip): ~5 s
def test_with_no_python_that_can_check_it_a_dry_run_says_so_and_fails(checkout, tmp_path):
    """No installed venv and a host Python without pydantic 2: a throwaway venv is tried (here
    without an index, so it cannot be made) and removed; the dry run says the config is not
    checked and exits 1, never a silent pass."""
    host = subprocess.run(["/usr/bin/python3", "-c", "import pydantic"], capture_output=True)
    if host.returncode == 0:
        pytest.skip("this machine's /usr/bin/python3 has pydantic: nothing to fall back from")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, PYTHONPATH="", TMPDIR=str(scratch), KIOSK_PYTHON="/usr/bin/python3")
    root = fresh_os_root(tmp_path / "root")
    proc = _dry_run(checkout, root, "--pip-args", "--no-index", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    todo = lines_of(proc.stdout, "preflight")
    assert any(
        "todo:" in line and "not checked: no Python here can load it" in line for line in todo
    )
    assert "throwaway venv" in proc.stdout and list(scratch.iterdir()) == []
