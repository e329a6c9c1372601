"""``kiosk backup`` makes the copy of the log it archives (in clear) on the kiosk's own card when
the archive is sealed, never on the stick the archive goes to (docs/cli.md, ``kiosk backup``)."""

from __future__ import annotations

import os
import time

import pytest
import test_backup
from test_backup_encrypted import backup_with

from kiosk import backup

#: The same gate, stick and no installed kiosk as the plain archive's tests.
gate, usb, no_installed_kiosk = test_backup.gate, test_backup.usb, test_backup.no_installed_kiosk


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    monkeypatch.setattr(backup, "KDF", backup.Kdf(log_n=4, r=1, p=1))


def test_the_logs_copy_is_made_on_the_kiosks_card_never_on_the_stick_it_is_sealed_onto(
    gate, usb, tmp_path, monkeypatch
):
    """The copy of the log the archive is made from (in clear) was staged on the stick beside
    the archive and deleted once sealed: its blocks stayed in the stick's free space, the whole
    log readable by any undelete tool next to its encrypted archive."""
    data, etc, _ = gate
    copies = []
    real = backup.snapshot_database

    def recorded(source, target, **kw):
        copies.append(target)
        return real(source, target, **kw)

    monkeypatch.setattr(backup, "snapshot_database", recorded)
    left = data / ".kiosk-backup-killed"  # a backup killed mid-way, a day ago
    left.mkdir()
    (left / "kiosk.db").write_bytes(b"the log in clear")
    os.utime(left, (time.time() - 86400, time.time() - 86400))
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse battery staple\n")
    assert backup_with(data, etc, usb / "north.kbak", "--passphrase-file", str(secret)) == 0
    assert copies[-1].parent.parent == data  # beside the log, on its own card
    assert [p.name for p in usb.iterdir()] == ["north.kbak"]
    assert not left.exists() and not list(data.glob(".kiosk-backup-*"))
    assert backup_with(data, etc, usb / "plain.kbak", "--plain") == 0
    assert copies[-1].parent.parent == usb  # plain: the stick gets it in clear anyway
