"""``kiosk backup`` seals a new archive only with a passphrase of at least
``MIN_PASSPHRASE_CHARS`` (12) characters: a short one on a lost stick is guessed offline, for as
long as its finder likes. ``kiosk restore`` still opens an archive sealed with a shorter one
before the rule (docs/cli.md, ``kiosk backup``)."""

from __future__ import annotations

import sys

import pytest
import test_backup
from test_backup import run_restore
from test_backup_encrypted import _Terminal, backup_with

from kiosk import backup

#: The same gate, stick and no installed kiosk as the plain archive's tests.
gate, usb, no_installed_kiosk = test_backup.gate, test_backup.usb, test_backup.no_installed_kiosk
SHORT = "gate1234"  # 8 characters: what a guard picks when any will do


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    monkeypatch.setattr(backup, "KDF", backup.Kdf(log_n=4, r=1, p=1))


def test_a_short_passphrase_seals_no_archive(gate, usb, tmp_path, capsys):
    data, etc, _ = gate
    secret = tmp_path / "passphrase"
    secret.write_text(SHORT + "\n")
    assert backup_with(data, etc, usb / "north.kbak", "--passphrase-file", str(secret)) == 2
    err = capsys.readouterr().err
    assert "8 characters, fewer than the 12" in err and "nothing written" in err
    assert SHORT not in err and list(usb.iterdir()) == []
    # Twelve characters, counted as characters: four Chinese ones are 12 bytes, not enough.
    secret.write_text("东门冬灯\n", encoding="utf-8")
    assert backup_with(data, etc, usb / "north.kbak", "--passphrase-file", str(secret)) == 2
    assert "4 characters" in capsys.readouterr().err
    secret.write_text("东门冬天的路灯很亮很亮\n", encoding="utf-8")  # 11
    assert backup_with(data, etc, usb / "north.kbak", "--passphrase-file", str(secret)) == 2
    secret.write_text("东门冬天的路灯很亮很亮啊\n", encoding="utf-8")  # 12
    assert backup_with(data, etc, usb / "north.kbak", "--passphrase-file", str(secret)) == 0


def test_at_a_terminal_a_short_passphrase_is_refused_before_it_is_asked_again(
    gate, usb, monkeypatch, capsys
):
    data, etc, _ = gate
    monkeypatch.setattr(sys, "stdin", _Terminal())
    typed = iter([SHORT, SHORT])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))
    assert backup_with(data, etc, usb / "north.kbak") == 2
    assert "fewer than the 12" in capsys.readouterr().err and list(usb.iterdir()) == []
    assert next(typed) == SHORT  # "Again:" was never asked


def test_the_archive_writer_refuses_a_short_passphrase_too(tmp_path):
    with pytest.raises(backup.BackupError, match="fewer than the 12"):
        backup.write_archive(tmp_path / "x.kbak", [], {"files": []}, SHORT.encode())
    assert list(tmp_path.iterdir()) == []


def test_an_archive_sealed_with_a_short_passphrase_before_the_rule_still_restores(
    gate, usb, tmp_path, capsys
):
    data, etc, _ = gate
    plain = usb / "plain.kbak"
    assert backup_with(data, etc, plain, "--plain") == 0
    old = usb / "old.kbak"  # what the release before wrote: the same tar, sealed with "pw"
    with open(old, "wb") as raw:
        sink = backup.Encrypting(raw, b"pw")
        sink.write(plain.read_bytes())
        sink.finish()
    secret = tmp_path / "old-passphrase"
    secret.write_text("pw\n")
    capsys.readouterr()
    new = tmp_path / "new"
    assert run_restore(new / "data", new / "etc", old, "--passphrase-file", str(secret)) == 0
    assert (new / "data" / "kiosk.db").is_file()


@pytest.mark.parametrize(
    "weak", [" " * 12, "aaaaaaaaaaaa", "121212121212", "ab ab ab ab ab"], ids=repr
)
def test_twelve_characters_of_a_few_repeated_seal_no_archive(weak):
    """Twelve spaces, or one or two characters over and over, passed the length rule: it is
    the first thing a guessing tool tries. A passphrase needs ``MIN_PASSPHRASE_DISTINCT``
    different characters, spaces not counted (what it says does not repeat the passphrase)."""
    why = backup.passphrase_too_short(weak.encode())
    assert why is not None and "different characters" in why
    assert weak.strip() == "" or weak.strip()[:4] not in why
    assert backup.passphrase_too_short(b"gate north 1234") is None
    assert backup.passphrase_too_short("东门冬天的路灯很亮很亮啊".encode()) is None
