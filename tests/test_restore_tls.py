"""A gate served over TLS (``web.tls = true``): after a restore its certificate's credentials
reach kiosk.service only through scripts/install (its drop-in), so the restore says to run it
again; and ``kiosk check-config --root`` refuses what ``kiosk run`` refuses, web.tls on with
no tls_cert/tls_key credentials where the install keeps them."""

from __future__ import annotations

import test_backup
from test_backup import make_gate, run_backup, run_restore

from checkpoint.cli import main

usb, no_installed_kiosk = test_backup.usb, test_backup.no_installed_kiosk

_TLS_CONFIG = '[site]\nkiosk_id = "gate-north"\n[web]\ntls = true\n'
_SAID = "web.tls is on: run scripts/install again (it installs the certificate's credentials)"


def test_a_restored_tls_gate_is_told_to_run_the_install_again(tmp_path, clock, usb, capsys):
    data, etc, log = make_gate(tmp_path / "north", clock)
    (etc / "kiosk.toml").write_text(_TLS_CONFIG)
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    new_data, new_etc, new_log = make_gate(tmp_path / "new", clock, "gate-1", events=0)
    new_log.close()
    capsys.readouterr()

    assert run_restore(new_data, new_etc, usb / "north.kbak", "--as-this-gate") == 0

    assert _SAID in capsys.readouterr().err


def test_a_restored_gate_without_tls_is_not_told_to(tmp_path, clock, usb, capsys):
    data, etc, log = make_gate(tmp_path / "north", clock)
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    new_data, new_etc, new_log = make_gate(tmp_path / "new", clock, "gate-1", events=0)
    new_log.close()

    assert run_restore(new_data, new_etc, usb / "north.kbak", "--as-this-gate") == 0

    assert "web.tls" not in capsys.readouterr().err


def test_check_config_with_a_root_refuses_tls_without_its_credentials(tmp_path, capsys):
    """Before: `ok`, exit 0, for a config `kiosk run` refuses to start with."""
    config = tmp_path / "kiosk.toml"
    config.write_text(_TLS_CONFIG)
    root = tmp_path / "root"
    credentials = root / "etc" / "kiosk" / "credentials"
    credentials.mkdir(parents=True)
    (credentials / "tls_cert").write_text("certificate\n")  # the key is missing

    assert main(["check-config", "--root", str(root), str(config)]) == 2

    out, err = capsys.readouterr()
    assert "ok" not in out
    assert "web.tls is on but the tls_cert/tls_key credentials are missing" in err
    assert "tls_key" in err and str(credentials) in err

    (credentials / "tls_key").write_text("key\n")
    assert main(["check-config", "--root", str(root), str(config)]) == 0
    assert "ok" in capsys.readouterr().out


def test_check_config_without_a_root_leaves_the_credentials_to_kiosk_run(tmp_path, capsys):
    """``sudo kiosk-admin check-config`` is handed no TLS credentials (only kiosk.service
    is): without ``--root`` they are not judged, never refused for being out of sight."""
    config = tmp_path / "kiosk.toml"
    config.write_text(_TLS_CONFIG)

    assert main(["check-config", str(config)]) == 0
    assert "ok" in capsys.readouterr().out
