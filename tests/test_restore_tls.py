"""A gate served over TLS (``web.tls = true``): after a restore its certificate's credentials
reach kiosk.service only through scripts/install (its drop-in), which the restore's procedure
runs again after the check (a drill is told nothing of it); and ``kiosk check-config`` says
what ``kiosk run`` refuses, web.tls on with no tls_cert/tls_key credentials or two that are not a
certificate and its key, where the kiosk takes them: with ``--root`` a missing one only warned
of (scripts/install checks the config before its credentials step can make them)."""

from __future__ import annotations

import os

import pytest
import test_backup
from test_backup import make_gate, run_backup, run_restore
from test_edge_hostile import _self_signed

from checkpoint.cli import config_cmd, main

usb, no_installed_kiosk = test_backup.usb, test_backup.no_installed_kiosk

_TLS_CONFIG = '[site]\nkiosk_id = "gate-north"\n[web]\ntls = true\n'
_SAID = (
    "web.tls is on: on a replaced Pi that install run, after the check, hands kiosk.service the"
    " archive's certificate"
)


def test_a_restored_tls_gate_is_told_the_install_run_hands_over_its_certificate(
    tmp_path, clock, usb, capsys, monkeypatch
):
    """It said "run scripts/install --tls again" after the words saying to check the log
    first: an install without --no-start enables and starts the gate on the unchecked log.
    The install run it speaks of is the one after the check (the line before it)."""
    data, etc, log = make_gate(tmp_path / "north", clock)
    (etc / "kiosk.toml").write_text(_TLS_CONFIG)
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    new_data, new_etc, new_log = make_gate(tmp_path / "new", clock, "gate-1", events=0)
    new_log.close()
    monkeypatch.setattr("checkpoint.cli.backup_cmd.INSTALLED_DATA", str(new_data))
    monkeypatch.setattr("checkpoint.cli.backup_cmd.INSTALLED_CONFIG", str(new_etc / "kiosk.toml"))
    capsys.readouterr()

    assert run_restore(new_data, new_etc, usb / "north.kbak", "--as-this-gate") == 0

    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"kiosk restore: {_SAID}"), err
    assert "verify-log --against" in err[-2] and "run scripts/install again" in err[-2]
    assert "--tls again" not in "\n".join(err)


def test_a_drill_of_a_tls_gate_is_told_no_install(tmp_path, clock, usb, capsys):
    """A drill (spare folders: no service starts on them) of a TLS gate's archive was told,
    after its own check, to run scripts/install --tls: on the office PC it would install a
    kiosk, on the gate restart the live one. Nothing about the install for a drill."""
    data, etc, log = make_gate(tmp_path / "north", clock)
    (etc / "kiosk.toml").write_text(_TLS_CONFIG)
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    drill = tmp_path / "drill"
    capsys.readouterr()

    assert run_restore(drill, drill / "etc", usb / "north.kbak") == 0

    err = capsys.readouterr().err
    assert "no service starts on them" in err.splitlines()[-1]
    assert "scripts/install" not in err and "web.tls" not in err


def test_a_restored_gate_without_tls_is_not_told_to(tmp_path, clock, usb, capsys):
    data, etc, log = make_gate(tmp_path / "north", clock)
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    new_data, new_etc, new_log = make_gate(tmp_path / "new", clock, "gate-1", events=0)
    new_log.close()

    assert run_restore(new_data, new_etc, usb / "north.kbak", "--as-this-gate") == 0

    assert "web.tls" not in capsys.readouterr().err


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch, tmp_path):
    """None handed to the test (as to a shell), and this machine's install in ``tmp_path``."""
    for name in ("CREDENTIALS_DIRECTORY", "KIOSK_TLS_CERT", "KIOSK_TLS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config_cmd, "INSTALLED_ROOT", tmp_path / "installed")


def _credential_warnings(err: str) -> list[str]:
    """The warnings of ``err`` about credentials (the root's trust folder is not made here)."""
    return [w for w in err.splitlines() if w.startswith("warning: ") and "policy" not in w]


def _tls_config(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text(_TLS_CONFIG)
    return config


def _root_without_the_key(tmp_path):
    root = tmp_path / "root"
    credentials = root / "etc" / "kiosk" / "credentials"
    credentials.mkdir(parents=True)
    _self_signed(credentials)
    (credentials / "tls_key").unlink()  # the key is missing
    return _tls_config(tmp_path), root, credentials


def test_check_config_with_a_root_warns_of_tls_without_its_credentials(tmp_path, capsys):
    """Before: exit 2, which stopped ``scripts/install --tls`` at its check of a config
    saying ``tls = true`` (set first, or restored) before its credentials step could make the
    certificate. Now `ok`, exit 0, and a warning naming what is missing and what makes it."""
    config, root, credentials = _root_without_the_key(tmp_path)

    assert main(["check-config", "--root", str(root), str(config)]) == 0

    out, err = capsys.readouterr()
    assert "ok" in out
    (warning,) = _credential_warnings(err)
    assert "web.tls is on but the tls_cert/tls_key credentials are missing" in warning
    assert f"no tls_key at {credentials / 'tls_key'}" in warning
    assert "tls_cert at" not in warning
    assert "scripts/install --tls" in warning

    _self_signed(credentials)
    assert main(["check-config", "--root", str(root), str(config)]) == 0
    out, err = capsys.readouterr()
    assert "ok" in out and not _credential_warnings(err)


def test_check_config_warns_of_a_credentials_folder_it_may_not_look_into(
    tmp_path, capsys, monkeypatch
):
    """Root's 0700 folder, looked at by another user: not judged (its files would all look
    missing), but said: nothing was checked there."""
    config, root, credentials = _root_without_the_key(tmp_path)
    looked = []

    def access(path, mode, **kwargs):
        looked.append((path, mode))
        return False

    monkeypatch.setattr(config_cmd.os, "access", access)

    assert main(["check-config", "--root", str(root), str(config)]) == 0

    out, err = capsys.readouterr()
    assert "ok" in out
    (warning,) = _credential_warnings(err)
    assert f"({credentials}/) cannot be read as this user" in warning
    assert "as root" in warning and "missing" not in warning
    assert (credentials, config_cmd.os.X_OK) in looked


def test_check_config_without_a_root_leaves_credentials_it_has_nowhere_to_look_for(
    tmp_path, capsys
):
    """A config checked on a machine with no install of the kiosk and none handed to it: not
    judged, never refused for being out of sight."""
    assert main(["check-config", str(_tls_config(tmp_path))]) == 0
    out, err = capsys.readouterr()
    assert "ok" in out and "tls" not in err


def _mismatched(folder):
    """A certificate and the key of another."""
    folder.mkdir(parents=True, exist_ok=True)
    _self_signed(folder)
    key = (folder / "tls_key").read_bytes()
    _self_signed(folder)
    (folder / "tls_key").write_bytes(key)


def _encrypted(folder):
    """A certificate and its key, the key encrypted with a passphrase (as `openssl genpkey
    -aes256` or a CA's portal gives it)."""
    from cryptography.hazmat.primitives import serialization

    _self_signed(folder)
    key = serialization.load_pem_private_key((folder / "tls_key").read_bytes(), None)
    sealed = serialization.BestAvailableEncryption(b"the office's secret")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, sealed)
    (folder / "tls_key").write_bytes(pem)


def _handed(tmp_path, monkeypatch, how):
    """The credentials where ``kiosk run`` takes them: systemd's folder, ``KIOSK_TLS_*``, or
    (handed nothing) this machine's install's folder, as kiosk.service is handed them."""
    folder = {
        "systemd": tmp_path / "creds",
        "environment": tmp_path / "elsewhere",
        "installed": tmp_path / "installed" / config_cmd.INSTALLED_CREDENTIALS,
    }[how]
    folder.mkdir(parents=True)
    if how == "systemd":
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    if how == "environment":
        monkeypatch.setenv("KIOSK_TLS_CERT", str(folder / "tls_cert"))
        monkeypatch.setenv("KIOSK_TLS_KEY", str(folder / "tls_key"))
    return folder


@pytest.mark.parametrize("how", ["systemd", "environment", "installed"])
def test_check_config_without_a_root_refuses_the_tls_credentials_kiosk_run_refuses(
    tmp_path, capsys, monkeypatch, how
):
    """``kiosk check-config`` said `ok` of a config with web.tls on while its certificate
    was missing, or its key another certificate's: `kiosk run` then failed to start."""
    config = _tls_config(tmp_path)
    folder = _handed(tmp_path, monkeypatch, how)

    _self_signed(folder)
    assert main(["check-config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "ok" in out and "tls" not in err

    (folder / "tls_cert").unlink()
    assert main(["check-config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert "ok" not in out
    assert "web.tls is on but the tls_cert/tls_key credentials are missing" in err
    assert f"no tls_cert at {folder / 'tls_cert'}" in err

    _mismatched(folder)
    assert main(["check-config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert "ok" not in out
    assert "web.tls: the tls_cert/tls_key credentials are not a certificate and its key" in err
    assert str(folder / "tls_key") in err


def test_check_config_with_a_root_refuses_a_certificate_and_another_key(tmp_path, capsys):
    config, root, credentials = _root_without_the_key(tmp_path)
    _mismatched(credentials)

    assert main(["check-config", "--root", str(root), str(config)]) == 2
    assert "not a certificate and its key" in capsys.readouterr().err


def test_check_config_warns_of_credentials_this_user_may_not_read(tmp_path, capsys, monkeypatch):
    """``sudo kiosk-admin check-config`` runs as the kiosk's user: root's 0600 files are
    said unchecked, never refused as missing or broken."""
    config = _tls_config(tmp_path)
    folder = _handed(tmp_path, monkeypatch, "installed")
    _mismatched(folder)
    real = config_cmd.os.access
    monkeypatch.setattr(
        config_cmd.os, "access", lambda path, mode: mode != os.R_OK and real(path, mode)
    )

    assert main(["check-config", str(config)]) == 0

    out, err = capsys.readouterr()
    assert "ok" in out
    (warning,) = _credential_warnings(err)
    assert "cannot be read as this user" in warning and str(folder / "tls_key") in warning


def test_an_encrypted_tls_key_is_refused_in_words_never_asked_for(tmp_path, capsys, monkeypatch):
    """OpenSSL asked for the key's passphrase at check-config's terminal ("Enter PEM pass
    phrase:", which kiosk.service can never answer: passed there, refused at start), and
    without a terminal said "[Errno 22] Invalid argument"."""
    from kiosk import tlscert

    config = _tls_config(tmp_path)
    folder = _handed(tmp_path, monkeypatch, "systemd")
    _encrypted(folder)
    with pytest.raises(tlscert.EncryptedKey):
        tlscert.tls_context(str(folder / "tls_cert"), str(folder / "tls_key"))

    assert main(["check-config", str(config)]) == 2

    err = capsys.readouterr().err
    assert "the key is encrypted with a passphrase, which the kiosk cannot be given" in err
    assert f"openssl pkey -in {folder / 'tls_key'} -out" in err and "Errno" not in err
