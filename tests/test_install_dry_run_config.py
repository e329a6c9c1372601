"""scripts/install --dry-run's ``[config]`` step says what was checked: preflight judged the
config with this checkout's kiosk.config (as the daemon will load it), so the step no longer
says it "would check it with" a kiosk command as if nothing had been checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_install import _dry_run, fresh_os_root, lines_of, snapshot_checkout

pytestmark = pytest.mark.slow  # the shell installer against a throwaway root


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    return snapshot_checkout(tmp_path_factory.mktemp("checkout"))


def test_a_dry_run_says_the_config_was_checked_at_preflight(checkout, tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\nkiosk_id = "gate-9"\n[gate.driver]\ntype = "none"\n')
    proc = _dry_run(checkout, fresh_os_root(tmp_path / "root"), "--config", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines_of(proc.stdout, "config") == [
        f"[config] would: install /etc/kiosk/kiosk.toml from {config}",
        f"[config] ok: checked at preflight as the daemon will load it: {config} (kiosk_id=gate-9)",
    ]
