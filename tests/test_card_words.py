"""A write the SD card refuses, said in the words a Pi owner acts on (``kiosk.cardfault``):
every verb of the CLI through one mapping in ``checkpoint.cli.main``, and the event log's
health the guard console shows. Before: ``kiosk purge`` on a full card said
``SQLITE_IOERR_SHMSIZE``, ``kiosk lists import --apply`` ``SQLITE_FULL``, ``kiosk keys new``
``No space left on device`` with exit 2, the console ``last write failed: SQLITE_FULL``."""

from __future__ import annotations

import errno
import re
import sqlite3
from pathlib import Path

import pytest
from support import tiny_tmpfs
from test_operator_faults import fill
from test_store_full import draft, fill_database

from checkpoint.cli import main
from kiosk.cardfault import card_fault
from kiosk.store import EventLog, StoreFault
from ui.device_words import detail_text


def rows(db) -> tuple:
    conn = sqlite3.connect(db)
    try:
        return tuple(
            conn.execute(f"SELECT * FROM {table} ORDER BY seq").fetchall()  # noqa: S608
            for table in ("events", "audit")
        )
    finally:
        conn.close()


def said_full(err: str, where, changed: str = "nothing was changed") -> bool:
    return (
        f"MB free at {where}" in err
        and re.match(r"kiosk \w+: the (card|disk) is full \(\d+\.\d MB free at ", err)
        and "): free space " in err
        and changed in err
        and "SQLITE" not in err
        and err.count("\n") == 1
    )


@pytest.mark.slow  # integration: a real file system filled (CI runs it)
@pytest.mark.parametrize("free_k", [0, 96])  # no room for the -shm file; room for it only
def test_purge_and_an_import_on_a_full_card_say_the_card_is_full(tmp_path, clock, capsys, free_k):
    sheet = tmp_path / "households.csv"
    sheet.write_text("household,residents\n" + "".join(f"1-{n:03d},3\n" for n in range(300)))
    with tiny_tmpfs(tmp_path / "mnt", "2m") as mnt:
        db = mnt / "kiosk.db"
        with EventLog(db, "gate-1", clock) as log:
            for _ in range(20):
                log.append(draft())
        before = rows(db)
        filler = fill(mnt)
        with open(filler, "r+b") as f:
            f.truncate(filler.stat().st_size - free_k * 1024)
        purge = ["purge", "--older-than", "0", "--trust-clock", "--db", str(db)]
        assert main(purge) == 1
        # With room for the -shm only, it migrates the log and freezes its day first.
        did = "nothing was changed" if free_k == 0 else "are frozen: run it again to finish"
        assert said_full(capsys.readouterr().err, mnt, did)
        assert main(["lists", "import", "--apply", "--db", str(db), str(sheet)]) == 1
        assert said_full(capsys.readouterr().err, mnt)
        filler.unlink()
        assert rows(db) == before


def test_keys_new_on_a_full_card_is_the_environment_not_bad_input(tmp_path, capsys):
    with tiny_tmpfs(tmp_path / "mnt", "256k") as mnt:
        fill(mnt)
        assert main(["keys", "new", "--dir", str(mnt / "keys"), "--name", "office"]) == 1
        assert said_full(capsys.readouterr().err, mnt)


def failing_open(name: str):
    """``EventLog.open`` failing as the store fails it when SQLite says ``name``."""

    def open_(self):
        cause = sqlite3.OperationalError("disk I/O error")
        cause.sqlite_errorname = name
        raise StoreFault("store_fault", f"cannot open kiosk.db ({name})", path=self.path) from cause

    return open_


def test_a_card_failing_a_write_is_said_as_the_card_failing(tmp_path, monkeypatch, capsys):
    assert main(["token", "new", "--db", str(tmp_path / "kiosk.db"), "--scope", "logs:read"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(EventLog, "open", failing_open("SQLITE_IOERR_WRITE"))
    assert main(["token", "new", "--db", str(tmp_path / "kiosk.db"), "--scope", "logs:read"]) == 1
    err = capsys.readouterr().err
    assert f"failed a read or write at {tmp_path} (it may be failing)" in err
    assert "dmesg" in err and "nothing was changed" in err and "SQLITE" not in err


def test_a_read_only_error_on_a_writable_card_is_not_called_a_read_only_card(tmp_path):
    """SQLite says READONLY also of a file another user owns: the card is fine then."""
    cause = sqlite3.OperationalError("attempt to write a readonly database")
    cause.sqlite_errorname = "SQLITE_READONLY"
    assert card_fault(cause, tmp_path) is None
    mounted_ro = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "x"))
    assert card_fault(mounted_ro).said().endswith(f" is read-only ({tmp_path})")


def test_the_pis_own_file_system_is_the_card_another_is_a_disk(tmp_path):
    """A backup's USB stick that is full is not 'the card'."""
    full = card_fault(OSError(errno.ENOSPC, "No space left on device", "/x"))
    assert full.where == Path("/") and full.said().startswith("the card is full (")
    assert full.said().endswith(" MB free at /)")
    elsewhere = card_fault(OSError(errno.ENOSPC, "No space left on device", str(tmp_path)))
    own = tmp_path.stat().st_dev == Path("/").stat().st_dev
    assert elsewhere.said().startswith("the card" if own else "the disk")


def test_the_console_says_a_full_card_in_the_guards_words(tmp_path, clock):
    with EventLog(tmp_path / "kiosk.db", "gate-1", clock) as log:
        log.append(draft())
        fill_database(log)
        with pytest.raises(StoreFault):
            log.append(draft())
        detail = log.health().detail
    assert re.match(r"last write failed: the (card|disk) is full \(\d+\.\d MB free\)$", detail)
    assert str(tmp_path) not in detail  # health is read by others than this host
    assert detail_text("zh-CN", detail).startswith("存储卡已满（剩余 ")
    assert "paper register" in detail_text("en", detail)


@pytest.mark.slow  # integration: a real file system filled (CI runs it)
def test_a_purge_the_card_cut_off_between_batches_says_what_it_did(
    tmp_path, clock, capsys, monkeypatch
):
    """Its first batch committed (nulled, audited), the card filled: it said "nothing was
    changed" though names were gone. A batched purge says its batches before stay purged."""
    from checkpoint.cli import pull_cmd
    from kiosk import retention

    monkeypatch.setattr(retention, "BATCH_ROWS", 4)
    with tiny_tmpfs(tmp_path / "mnt", "4m") as mnt:
        db = mnt / "kiosk.db"
        with EventLog(db, "gate-1", clock) as log:
            for _ in range(10):
                log.append(draft(person={"name": "Wang Lei", "phone": "13800138000"}))
        before, filled = rows(db), []
        monkeypatch.setattr(pull_cmd, "_between_batches", lambda: filled.append(fill(mnt)))

        code = main(["purge", "--older-than", "0", "--trust-clock", "--db", str(db)])

        err = capsys.readouterr().err
        for filler in filled:
            filler.unlink()
        nulled = [a for a, b in zip(before[0], rows(db)[0], strict=True) if a != b]
    assert code == 1 and len(nulled) == 4
    assert re.match(r"kiosk purge: the (card|disk) is full \(\d+\.\d MB free at ", err)
    assert "nothing was changed" not in err
    assert "1 batch before it stays purged (audited): run it again to finish" in err


def test_a_purge_cut_off_after_migrating_and_freezing_says_so(tmp_path, clock, capsys, monkeypatch):
    """A full card cut the purge off after it migrated the log and froze a day's report: it
    said "nothing was changed", and "give another" (a USB stick's advice) of its own data
    dir. It says what stays done, and never to give another data dir."""
    from kiosk import retention

    db = tmp_path / "kiosk.db"
    with EventLog(db, "gate-1", clock) as log:  # no token or stats tables yet: migrated
        log.append(draft(person={"name": "Wang Lei", "phone": "13800138000"}))
    day = clock.now().date()
    real = retention._freeze

    def frozen_then_full(*args, **kwargs):
        real(*args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device", str(db))

    monkeypatch.setattr(retention, "_freeze", frozen_then_full)

    assert main(["purge", "--older-than", "0", "--trust-clock", "--db", str(db)]) == 1

    err = capsys.readouterr().err
    assert re.match(r"kiosk purge: the (card|disk) is full \(\d+\.\d MB free at ", err)
    assert "nothing was changed" not in err and "give another" not in err
    assert "the log is migrated to this version (" in err
    assert f"the daily reports of {day} are frozen: run it again to finish" in err
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM daily_aggregates").fetchone()[0]  # noqa: S608
    finally:
        conn.close()
