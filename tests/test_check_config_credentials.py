"""``kiosk check-config`` checks the credentials ``kiosk run`` reads as it starts, where the
daemon will be handed them, in its words (``kiosk.credentials``). It said `ok` of a gate whose
guard_users had a bad line or whose session_key was too short: scripts/install, which checks
with ``--root`` before it restarts the daemon, then said ok, and the restarted daemon refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkpoint.cli import config_cmd, main

KEY = "k" * 44
#: What `systemd-creds encrypt --with-key=host` wrote of "admin:admin:x" (the key long gone).
SEALED = (
    "Whxqht+dQJax1aZeCGLxmiAAAAABAAAADAAAABAAAADy0ngr6DSNlcXLX+kAAAAAo55eig8HpgSV3ke\n"
    "1GbdkBs+4I2Od2rHwXjZalGPC9erF3l0o/woGjJW1iPmdFYjL5O+7jyLd0VFD4bsBYg==\n"
)


@pytest.fixture(autouse=True)
def _nothing_handed(tmp_path, monkeypatch):
    """No credentials from the machine running the tests, and no install of its own."""
    for name in ("CREDENTIALS_DIRECTORY", "KIOSK_TOKEN_PEPPER", "KIOSK_SESSION_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config_cmd, "INSTALLED_ROOT", tmp_path / "installed")


def _config(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\nkiosk_id = "gate-1"\n[policy]\nmode = "temperature_only"\n')
    return config


def _warnings(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]


def _credentials(folder, **files: str):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_under_root_a_bad_credential_is_refused_in_the_daemons_words(tmp_path, capsys):
    config, root = _config(tmp_path), tmp_path / "root"
    folder = _credentials(root / "etc/kiosk/credentials", guard_users="admin:admin\n")
    _credentials(folder, token_pepper=KEY, session_key="too short\n")
    assert main(["check-config", "--root", str(root), str(config)]) == 2
    out, err = capsys.readouterr()
    assert "ok:" not in out and "too short\n" not in err.replace("is too short", "")
    assert err.splitlines() == [
        f"{config}: credential session_key is too short (9 characters, at least 32): make one"
        " with: head -c 32 /dev/urandom | base64",
        f"{config}: guard_users line 1: expected name:role:hash",
    ]
    _credentials(folder, guard_users="# none yet\n", session_key=KEY)
    assert main(["check-config", "--root", str(root), str(config)]) == 0


def test_under_root_the_callers_own_credentials_are_not_the_daemons(tmp_path, capsys, monkeypatch):
    config, root = _config(tmp_path), tmp_path / "root"
    _credentials(root / "etc/kiosk/credentials", session_key=KEY)
    monkeypatch.setenv("KIOSK_SESSION_KEY", "short")  # the installer's shell, not kiosk.service's
    assert main(["check-config", "--root", str(root), str(config)]) == 0
    (root / "etc/kiosk/credentials/session_key").write_text("")
    monkeypatch.setenv("KIOSK_TOKEN_PEPPER", KEY)
    (root / "etc/kiosk/credentials/token_pepper").write_text("\n")  # cut short
    assert main(["check-config", "--root", str(root), str(config)]) == 2
    assert "credential token_pepper is empty" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["systemd", "environment", "installed"])
def test_without_root_they_are_checked_where_kiosk_run_takes_them(
    tmp_path, capsys, monkeypatch, how
):
    config = _config(tmp_path)
    if how == "environment":
        monkeypatch.setenv("KIOSK_SESSION_KEY", "short")
    elif how == "systemd":  # sudo kiosk-admin check-config: handed as to the daemon
        folder = _credentials(tmp_path / "run", session_key="short")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    else:  # sudo kiosk check-config: the install's folder, read as root
        _credentials(tmp_path / "installed/etc/kiosk/credentials", session_key="short")
    assert main(["check-config", str(config)]) == 2
    assert "credential session_key is too short (5 characters" in capsys.readouterr().err


def test_without_root_or_any_handed_nothing_is_judged(tmp_path, capsys):
    assert main(["check-config", str(_config(tmp_path))]) == 0
    assert "credential" not in capsys.readouterr().err


def test_credentials_this_user_may_not_read_are_said_unchecked(tmp_path, capsys, monkeypatch):
    """`kiosk check-config` as pi: root's 0700 folder and 0600 files are not judged (they
    would look missing, or unreadable), but said so: a warning, exit 0, never a refusal."""
    config = _config(tmp_path)
    folder = _credentials(tmp_path / "installed/etc/kiosk/credentials", guard_users="x\n")
    real = config_cmd.os.access
    monkeypatch.setattr(config_cmd.os, "access", lambda path, mode: mode != 1 and real(path, mode))
    assert main(["check-config", str(config)]) == 0
    assert _warnings(capsys) == [
        f"warning: the credentials ({folder}/) cannot be read as this user, so they are not"
        " checked: check the config as root (sudo kiosk check-config ...)"
    ]
    monkeypatch.setattr(config_cmd.os, "access", lambda path, mode: mode != 4 and real(path, mode))
    assert main(["check-config", str(config)]) == 0
    (warning,) = _warnings(capsys)
    assert warning.startswith(f"warning: credential guard_users ({folder / 'guard_users'})")
    assert "cannot be read as this user, so it is not checked" in warning


def test_a_credential_systemd_creds_encrypted_is_said_unchecked(tmp_path, capsys):
    """Read as it is, an encrypted guard_users is no name:role:hash line: not checked, said so.
    The warning said kiosk.service is handed it decrypted (LoadCredentialEncrypted=): the
    shipped unit loads it with LoadCredential=, which hands it as it is (systemd.exec(5)), and
    kiosk run refuses it; a LoadCredentialEncrypted= line of the admin's own decrypts it."""
    config, root = _config(tmp_path), tmp_path / "root"
    folder = _credentials(root / "etc/kiosk/credentials", guard_users=SEALED, session_key=KEY)
    assert main(["check-config", "--root", str(root), str(config)]) == 0
    (warning,) = _warnings(capsys)
    assert warning == (
        f"warning: credential guard_users ({folder / 'guard_users'}) is encrypted"
        " (systemd-creds), so it is not checked: the shipped kiosk.service and kiosk-admin hand"
        " it as it is (LoadCredential= does not decrypt), and kiosk run refuses it: write it in"
        " plain (a LoadCredentialEncrypted= line of your own, sudo systemctl edit kiosk, decrypts"
        " it for the daemon alone)"
    )
    unit = (Path(__file__).parents[1] / "systemd/kiosk.service").read_text()
    assert "LoadCredential=guard_users:" in unit and "LoadCredentialEncrypted" not in unit
    (folder / "session_key").write_bytes(SEALED.replace("\n", "").encode())  # one line too
    tpm_and_host = bytes.fromhex("93a894094874449090caf2fc93cab553")  # systemd's key id
    (folder / "guard_users").write_bytes(tpm_and_host + bytes(60))  # binary, as it may be
    assert main(["check-config", "--root", str(root), str(config)]) == 0
    assert capsys.readouterr().err.count("is encrypted (systemd-creds)") == 2
    (folder / "guard_users").write_bytes(tpm_and_host[:4] + b" not that id" + bytes(50))
    assert main(["check-config", "--root", str(root), str(config)]) == 2
    assert "credential guard_users" in capsys.readouterr().err


def test_a_short_token_pepper_passes_the_update_with_its_warning(tmp_path, capsys):
    """The update's check (check-config --root) refused a gate's 24-character token_pepper
    the daemon had run on, and the line's fix (a new pepper) voided every API token issued,
    unsaid. It is ok now, with a warning saying what a new one costs."""
    config, root = _config(tmp_path), tmp_path / "root"
    folder = _credentials(root / "etc/kiosk/credentials", session_key=KEY)
    _credentials(folder, token_pepper="Yesterday-pepper-24chars\n")
    assert main(["check-config", "--root", str(root), str(config)]) == 0
    warned = _warnings(capsys)
    assert len(warned) == 1 and "credential token_pepper is short (24 characters" in warned[0]
    assert "voids every API token issued" in warned[0] and "Yesterday" not in warned[0]


@pytest.mark.parametrize("text", ["screen-1\n", "\n"])
def test_a_screen_key_too_short_to_be_taken_is_said_not_refused(tmp_path, capsys, text):
    """A short (or empty) screen_key was ignored without a word, here and at start: a screen
    on another machine could not pair, and check-config said ok."""
    config, root = _config(tmp_path), tmp_path / "root"
    _credentials(root / "etc/kiosk/credentials", session_key=KEY, screen_key=text)
    assert main(["check-config", "--root", str(root), str(config)]) == 0
    (warning,) = _warnings(capsys)
    chars = len(text.strip())
    assert f"credential screen_key is too short ({chars} characters, at least 16)" in warning
    assert "ignored" in warning and "screen-1" not in warning


def test_an_empty_session_key_is_said_not_refused(tmp_path, capsys):
    """An empty session_key (a file cut short) was exit 2 here and at start; the daemon signs
    with the key it keeps in its data dir instead, so it is a warning, as at start."""
    config, root = _config(tmp_path), tmp_path / "root"
    _credentials(root / "etc/kiosk/credentials", session_key="\n")
    assert main(["check-config", "--root", str(root), str(config)]) == 0
    (warning,) = _warnings(capsys)
    assert "credential session_key is empty (cut short?): not taken" in warning
