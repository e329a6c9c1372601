"""The database file copied back (or replaced) under a running daemon: the event log notices
at its next write and refuses to write on, with the reason, instead of forking the chain."""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest

from kiosk.store import EventLog, StoreFault
from tests.test_store import draft


@pytest.fixture
def log(tmp_path, clock):
    event_log = EventLog(tmp_path / "kiosk.db", "gate-1", clock, boot_id="boot-a").open()
    yield event_log
    event_log.close()


def _copy_of(log: EventLog, where) -> None:
    """An online copy of the log as it is now (SQLite's backup API)."""
    source = sqlite3.connect(log.path)
    target = sqlite3.connect(where)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _files(path) -> list[bytes]:
    """The database file and the WAL beside it, as they are on the card."""
    wal = path.with_name(path.name + "-wal")
    return [path.read_bytes(), wal.read_bytes() if wal.exists() else b""]


def test_an_older_copy_moved_over_the_running_log_is_never_written(log, tmp_path):
    log.append(draft())
    _copy_of(log, tmp_path / "old.db")
    log.append(draft())
    os.replace(tmp_path / "old.db", log.path)  # `mv old.db kiosk.db` under the daemon
    before = _files(log.path)

    with pytest.raises(StoreFault, match="replaced"):
        log.append(draft())
    with pytest.raises(StoreFault, match="replaced"):  # and stays so: no reconnect onto it
        log.append(draft())
    health = log.health()
    assert health.state == "fault" and "restart" in health.detail
    assert _files(log.path) == before  # nothing written onto the copy


def test_an_older_copy_written_into_the_running_log_is_never_written_on(log, tmp_path):
    log.append(draft())
    log.append(draft())
    _copy_of(log, tmp_path / "old.db")
    for _ in range(40):  # the file grows past the copy's size
        log.append(draft(person={"note": "x" * 200}))
    log.wipe_wal()  # what the daemon had is in the file, the WAL empty
    assert (tmp_path / "old.db").stat().st_size < log.path.stat().st_size
    shutil.copyfile(tmp_path / "old.db", log.path)  # `cp old.db kiosk.db`: same inode
    before = _files(log.path)

    with pytest.raises(StoreFault, match="replaced"):
        log.append(draft())
    assert _files(log.path) == before


def test_another_log_copied_over_the_running_one_is_never_written(log, tmp_path, clock):
    log.append(draft())
    other = EventLog(tmp_path / "other.db", "gate-1", clock, boot_id="boot-b").open()
    for _ in range(3):
        other.append(draft())
    other.close()
    os.replace(tmp_path / "other.db", log.path)
    before = _files(log.path)

    with pytest.raises(StoreFault, match="replaced"):
        log.audit("system", "test.row")
    assert _files(log.path) == before


def test_writes_of_other_processes_on_the_same_file_are_not_a_replacement(log, clock):
    log.append(draft())
    other = EventLog(log.path, "gate-1", clock, boot_id="boot-b").open()  # `kiosk purge`
    other.append(draft())
    other.close()
    assert log.append(draft()).seq == 3
    assert log.health().ok


def test_the_daemons_health_says_its_log_was_replaced_by_a_backup_put_back(data_dir, tmp_path):
    """The mistake docs/operations.md warns of, end to end: the database of a `kiosk backup`
    copied back into the running daemon's file, whose own view of it comes from its WAL
    (same inode, same size). Its store turns fault with the reason; nothing is written."""
    import tarfile

    from checkpoint.app import build_core
    from checkpoint.cli import main
    from kiosk.config import parse_config

    core = build_core(parse_config({"site": {"kiosk_id": "test-gate"}}), data_dir)
    try:
        core.store.audit("system", "test.before")
        archive = tmp_path / "gate.kbak"
        assert main(["backup", "--into", str(archive), "--data", str(data_dir), "--plain"]) == 0
        core.store.audit("system", "test.after")
        with tarfile.open(archive) as tar:
            tar.extract("data/kiosk.db", tmp_path / "usb", filter="data")
        # `sudo cp kiosk.db /var/lib/kiosk/`: into the same file, the daemon's WAL beside it
        shutil.copyfile(tmp_path / "usb" / "data" / "kiosk.db", data_dir / "kiosk.db")
        before = _files(data_dir / "kiosk.db")

        with pytest.raises(StoreFault, match="replaced"):
            core.store.audit("system", "test.later")

        store = core.health()["devices"]["store"]
        assert store["state"] == "fault" and "written over it" in store["detail"]
        assert _files(data_dir / "kiosk.db") == before
    finally:
        core.close()
