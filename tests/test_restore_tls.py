"""A gate served over TLS (``web.tls = true``): after a restore its certificate's credentials
reach kiosk.service only through scripts/install (its drop-in), so the restore says to run it
again (with --tls: a plain run may make none); and ``kiosk check-config --root`` warns of
what ``kiosk run`` refuses, web.tls on with no tls_cert/tls_key credentials where the install
keeps them, without refusing the config: scripts/install checks it before its credentials step
can make them."""

from __future__ import annotations

import test_backup
from test_backup import make_gate, run_backup, run_restore

from checkpoint.cli import config_cmd, main

usb, no_installed_kiosk = test_backup.usb, test_backup.no_installed_kiosk

_TLS_CONFIG = '[site]\nkiosk_id = "gate-north"\n[web]\ntls = true\n'
_SAID = (
    "web.tls is on: run scripts/install --tls again (with the same --tls-name options): it"
    " installs the certificate's credentials"
)


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


def _root_without_the_key(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text(_TLS_CONFIG)
    root = tmp_path / "root"
    credentials = root / "etc" / "kiosk" / "credentials"
    credentials.mkdir(parents=True)
    (credentials / "tls_cert").write_text("certificate\n")  # the key is missing
    return config, root, credentials


def test_check_config_with_a_root_warns_of_tls_without_its_credentials(tmp_path, capsys):
    """Before: exit 2, which stopped ``scripts/install --tls`` at its check of a config
    saying ``tls = true`` (set first, or restored) before its credentials step could make the
    certificate. Now `ok`, exit 0, and a warning naming what is missing and what makes it."""
    config, root, credentials = _root_without_the_key(tmp_path)

    assert main(["check-config", "--root", str(root), str(config)]) == 0

    out, err = capsys.readouterr()
    assert "ok" in out
    (warning,) = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert "web.tls is on but the tls_cert/tls_key credentials are missing" in warning
    assert "no tls_key in" in warning and str(credentials) in warning
    assert "tls_cert in" not in warning
    assert "scripts/install --tls" in warning

    (credentials / "tls_key").write_text("key\n")
    assert main(["check-config", "--root", str(root), str(config)]) == 0
    out, err = capsys.readouterr()
    assert "ok" in out and "warning" not in err


def test_check_config_leaves_a_credentials_folder_it_may_not_look_into(
    tmp_path, capsys, monkeypatch
):
    """Root's 0700 folder, looked at by another user: not judged (its files would all look
    missing), no warning."""
    config, root, credentials = _root_without_the_key(tmp_path)
    looked = []

    def access(path, mode, **kwargs):
        looked.append((path, mode))
        return False

    monkeypatch.setattr(config_cmd.os, "access", access)

    assert main(["check-config", "--root", str(root), str(config)]) == 0

    out, err = capsys.readouterr()
    assert "ok" in out and "warning" not in err
    assert (credentials, config_cmd.os.X_OK) in looked


def test_check_config_without_a_root_leaves_the_credentials_to_kiosk_run(tmp_path, capsys):
    """``sudo kiosk-admin check-config`` is handed no TLS credentials (only kiosk.service
    is): without ``--root`` they are not judged, never refused for being out of sight."""
    config = tmp_path / "kiosk.toml"
    config.write_text(_TLS_CONFIG)

    assert main(["check-config", str(config)]) == 0
    assert "ok" in capsys.readouterr().out
