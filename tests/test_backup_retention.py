"""The ``before-restore-<UTC>/`` folder a restore leaves in the data dir (this Pi's whole old
log: residents' names and phones, with its keys) under retention: the purge that empties the
log's rows past ``store.retention_days`` removes it once it is that old."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime

import test_backup
from test_backup_encrypted import backup_with

from checkpoint.app import Daemon, build_core
from checkpoint.notify import Notifier
from kiosk import backup
from kiosk.clock import FakeClock
from kiosk.config import KioskConfig

START = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def set_aside(data, stamp: str):
    aside = data / f"before-restore-{stamp}"
    (aside / "keys").mkdir(parents=True)
    (aside / "kiosk.db").write_bytes(b"an old log: Wang Lei 13800000000")
    (aside / "keys" / "issuer.key").write_text("private key\n")
    return aside


def test_a_restores_old_log_goes_with_the_purge_once_past_retention(data_dir, caplog):
    """A folder is dated by the time in its name, and no earlier than the first purge that
    saw it: a restore on a new card before NTP set its clock names it 2025."""
    clock = FakeClock(start=START)
    old = set_aside(data_dir, "20250101T000000Z")  # the restore's clock, not yet set
    other = data_dir / "before-restore-notes"  # not a restore's: left alone
    other.mkdir()
    core = build_core(KioskConfig(), data_dir, clock)  # store.retention_days = 30
    daemon = Daemon(core, notifier=Notifier(None))
    try:
        daemon.purge_once()
        assert (old / "kiosk.db").is_file()  # the operator's way back, not gone at once
        clock.advance(20 * 86400)
        recent = set_aside(data_dir, clock.now().strftime("%Y%m%dT%H%M%SZ"))
        daemon.purge_once()
        clock.advance(11 * 86400)
        caplog.set_level("INFO")
        daemon.purge_once()
    finally:
        core.close()
    assert not old.exists()
    assert (recent / "kiosk.db").is_file() and other.is_dir()
    said = [r.getMessage() for r in caplog.records if "before-restore" in r.getMessage()]
    assert said == [
        "retention: removed before-restore-20250101T000000Z (a restore set it aside before"
        " the cutoff)"
    ]
    assert "13800000000" not in caplog.text


def test_no_folder_goes_while_the_clock_cannot_date_it(data_dir):
    clock = FakeClock(start=START, is_synced=False)
    old = set_aside(data_dir, "20250101T000000Z")
    core = build_core(KioskConfig(), data_dir, clock)
    try:
        Daemon(core, notifier=Notifier(None)).purge_once()
    finally:
        core.close()
    assert (old / "kiosk.db").is_file()


# -- the stage a killed `kiosk backup` left: the whole log in clear, under the same purge ----

gate, usb, no_installed_kiosk = test_backup.gate, test_backup.usb, test_backup.no_installed_kiosk


def test_a_killed_backups_stage_goes_with_the_purge_once_an_hour_old(
    gate, usb, tmp_path, monkeypatch
):
    """A sealed backup copies the log into a hidden stage beside it, on the kiosk's card; a
    backup killed before it sealed the archive (a power cut, the operator's Ctrl-\\) left that
    copy, the whole log in clear, which only the next backup removed: no purge, no forget."""
    data, etc, _ = gate
    monkeypatch.setattr(backup, "KDF", backup.Kdf(log_n=4, r=1, p=1))
    left = []
    real = backup.write_archive

    def killed_here(target, members, manifest, passphrase):
        """What a kill while the archive is written leaves: the stage as it is, by its name."""
        stage = next(m.source for m in members if m.name == backup.DB_MEMBER).parent
        left.append(shutil.copytree(stage, stage.with_name(stage.name + "-killed")))
        return real(target, members, manifest, passphrase)

    monkeypatch.setattr(backup, "write_archive", killed_here)
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse battery staple\n")
    assert backup_with(data, etc, usb / "north.kbak", "--passphrase-file", str(secret)) == 0
    assert backup_with(data, etc, usb / "again.kbak", "--passphrase-file", str(secret)) == 0
    old, fresh = left
    assert old.parent == data and b"Wang Lei" in (old / "kiosk.db").read_bytes()
    now = datetime.now(UTC)
    os.utime(old, (now.timestamp() - backup.STAGE_LEFT_S - 60,) * 2)

    removed = backup.purge_set_aside(data, now, now)

    assert removed == [old.name]
    assert not old.exists() and (fresh / "kiosk.db").is_file()


def _hour_on(stage, data):
    """The daemon's hourly purge, an hour after ``stage`` last changed (a big log's chains
    verified for minutes; a fake-hwclock stepped forward by NTP): what it removes."""
    now = datetime.now(UTC)
    os.utime(stage, (now.timestamp() - backup.STAGE_LEFT_S - 60,) * 2)
    return backup.purge_set_aside(data, now, now)


def test_the_purge_never_removes_a_running_backups_stage(gate, usb, tmp_path, monkeypatch):
    """The stage's time stops once SQLite made its copy there: an hour on, the purge removed
    the stage of a backup still verifying it, which then wrote an archive with no event log
    in it, exit 0, saying to run it as root. The backup holds its stage (a lock) until done."""
    data, etc, _ = gate
    monkeypatch.setattr(backup, "KDF", backup.Kdf(log_n=4, r=1, p=1))
    real, removed = backup.describe_log, []

    def verified_for_an_hour(path):
        facts = real(path)
        removed.extend(_hour_on(path.parent, data))
        return facts

    monkeypatch.setattr(backup, "describe_log", verified_for_an_hour)
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse battery staple\n")

    assert backup_with(data, etc, usb / "north.kbak", "--passphrase-file", str(secret)) == 0

    assert removed == []
    with backup.open_archive(usb / "north.kbak", b"correct horse battery staple") as archive:
        assert backup.DB_MEMBER in archive.members
    assert not [p for p in data.iterdir() if p.name.startswith(backup.BACKUP_STAGE_PREFIX)]


def test_a_backup_whose_copy_of_the_log_went_keeps_nothing(gate, usb, capsys, monkeypatch):
    """The copy gone under the backup (removed by hand, by an older version's purge) was
    "left out ...: run it as root", and an archive without the log kept, exit 0."""
    data, etc, _ = gate
    real = backup.describe_log

    def removed_under_it(path):
        facts = real(path)
        path.unlink()
        return facts

    monkeypatch.setattr(backup, "describe_log", removed_under_it)

    assert backup_with(data, etc, usb / "north.kbak", "--plain") == 1

    err = capsys.readouterr().err
    assert "the backup's copy of the event log" in err and "nothing kept" in err
    assert "left out" not in err and "as root" not in err
    assert not (usb / "north.kbak").exists()
