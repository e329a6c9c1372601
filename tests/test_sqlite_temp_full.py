"""SQLite's temp folder full ($SQLITE_TMPDIR, $TMPDIR or /var/tmp: a small tmpfs), the card
with GBs free: ``kiosk report``, ``purge`` and ``run`` on a month's log said "the card is full
(69282 MB free at ...)" and told the admin to vacuum the journal. The kiosk keeps SQLite's
temp files in its data dir (``sqlite-tmp``: the space it checks), and a full temp folder
elsewhere is named as such."""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from checkpoint import cli
from kiosk import cardfault
from kiosk.clock import FakeClock
from kiosk.store import EventDraft, EventLog, StoreFault

FREE_MB = {"data": 69282.0, "temp": 0.0}


def _full() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorname = "SQLITE_FULL"
    return exc


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """The data dir, and SQLite's temp folder on another file system (full)."""
    data, temp = tmp_path / "data", tmp_path / "tmpfs"
    data.mkdir()
    temp.mkdir()
    devices = {data: 1, temp: 2}
    device = lambda folder: devices.get(Path(folder), 1)  # noqa: E731
    monkeypatch.setattr(cardfault, "_device", device, raising=False)
    monkeypatch.setattr(
        cardfault, "_free_mb", lambda folder: FREE_MB["temp" if folder == temp else "data"]
    )
    monkeypatch.setattr(cardfault, "_medium", lambda folder: "the card")  # the Pi's own
    monkeypatch.setenv("SQLITE_TMPDIR", str(temp))
    return data, temp


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_full_temp_folder_is_named_not_the_card_with_room(folders, wrapped):
    data, temp = folders
    exc: BaseException = _full()
    if wrapped:  # as the store raises it
        try:
            detail = "database or disk is full"  # naming the log, as a purge's does
            raise StoreFault("store_fault", detail, path=data / "kiosk.db") from exc
        except StoreFault as fault:
            exc = fault
    args = argparse.Namespace(db=str(data / "kiosk.db"))
    said = cli._card_said(exc, args)
    assert said is not None
    assert said.startswith(f"SQLite's temp folder is full (0.0 MB free at {temp})"), said
    assert "69282" not in said and "journalctl" not in said
    assert "SQLITE_TMPDIR" in said


def test_a_full_card_is_still_the_card(folders, monkeypatch):
    """SQLite's temp folder in the data dir (the kiosk's own): the card it is."""
    data, _temp = folders
    monkeypatch.setenv("SQLITE_TMPDIR", str(data))
    said = cli._card_said(_full(), argparse.Namespace(db=str(data / "kiosk.db")))
    assert said is not None and said.startswith(f"the card is full (69282.0 MB free at {data})")


def test_a_temp_folder_with_more_room_than_the_card_is_not_blamed(folders, monkeypatch):
    data, _temp = folders
    monkeypatch.setitem(FREE_MB, "temp", 100000.0)
    said = cli._card_said(_full(), argparse.Namespace(db=str(data / "kiosk.db")))
    assert said is not None and said.startswith("the card is full")


def test_the_kiosk_command_keeps_sqlites_temp_files_in_the_data_dir(tmp_path):
    from checkpoint.cli.sqlite_temp import temp_in_data_dir

    (tmp_path / "sqlite-tmp").mkdir()  # made by systemd (StateDirectory) or scripts/install
    environ: dict[str, str] = {"TMPDIR": "/elsewhere"}
    folder = temp_in_data_dir(argparse.Namespace(data=tmp_path), environ)
    assert folder == tmp_path / "sqlite-tmp" and folder.is_dir()
    assert environ["SQLITE_TMPDIR"] == str(folder)
    assert cardfault.temp_folder(environ) == folder
    named = {"KIOSK_DATA": str(tmp_path)}
    assert temp_in_data_dir(argparse.Namespace(data=None), named) == folder  # $KIOSK_DATA


def test_the_kiosk_command_makes_no_temp_folder(tmp_path):
    """It made ``sqlite-tmp`` when missing: ``kiosk demo --data EMPTY`` found its new folder
    not empty, and a read-only verb on a ``--db`` copy left one next to it on the stick."""
    from checkpoint.cli.sqlite_temp import temp_in_data_dir

    environ: dict[str, str] = {}
    assert temp_in_data_dir(argparse.Namespace(data=tmp_path), environ) is None
    db = argparse.Namespace(db=str(tmp_path / "kiosk.db"), data=None)
    assert temp_in_data_dir(db, environ) is None
    assert environ == {} and list(tmp_path.iterdir()) == []
    (tmp_path / "sqlite-tmp").mkdir()  # --db's folder is never a data dir
    assert temp_in_data_dir(db, environ) is None and environ == {}


def test_a_symlinked_temp_folder_is_not_followed(tmp_path, monkeypatch):
    """``sudo kiosk VERB --data /var/lib/kiosk``: the service account's ``sqlite-tmp ->
    /etc`` was accepted and its target chowned to the account, before the verb refused
    root."""
    from checkpoint.cli import sqlite_temp

    target, data = tmp_path / "target", tmp_path / "data"
    target.mkdir()
    data.mkdir()
    (data / "sqlite-tmp").symlink_to(target)
    (data / "file").write_text("")
    chowned: list[object] = []
    monkeypatch.setattr(sqlite_temp.os, "geteuid", lambda: 0)
    monkeypatch.setattr(sqlite_temp.os, "chown", lambda *a, **k: chowned.append(a))
    environ: dict[str, str] = {}
    assert sqlite_temp.temp_in_data_dir(argparse.Namespace(data=data), environ) is None
    assert environ == {} and chowned == []
    (data / "sqlite-tmp").unlink()
    (data / "sqlite-tmp").symlink_to(data / "file")
    assert sqlite_temp.temp_in_data_dir(argparse.Namespace(data=data), environ) is None


def test_demo_takes_an_empty_data_dir(tmp_path):
    """``kiosk demo --data EMPTY`` was refused: the command had made ``sqlite-tmp`` in it."""
    from checkpoint.cli.daemon_cmd import demo_data_dir
    from checkpoint.cli.sqlite_temp import temp_in_data_dir

    empty = tmp_path / "empty"
    empty.mkdir()
    args = cli.build_parser().parse_args(["demo", "--data", str(empty)])
    temp_in_data_dir(args, {})  # what main() does first, in the command's own process
    assert demo_data_dir(empty) == empty


def test_a_temp_folder_set_already_or_no_data_dir_is_left_as_it_is(tmp_path):
    from checkpoint.cli.sqlite_temp import temp_in_data_dir

    environ = {"SQLITE_TMPDIR": "/var/tmp"}
    assert temp_in_data_dir(argparse.Namespace(data=tmp_path), environ) is None
    assert environ == {"SQLITE_TMPDIR": "/var/tmp"}
    nothing: dict[str, str] = {}
    assert temp_in_data_dir(argparse.Namespace(), nothing) is None and nothing == {}
    assert not (tmp_path / "sqlite-tmp").exists()


def test_the_units_point_sqlite_at_the_data_dir():
    root = Path(__file__).resolve().parents[1] / "systemd"
    for unit in ("kiosk.service", "kiosk-purge.service"):
        text = (root / unit).read_text()
        assert "Environment=SQLITE_TMPDIR=/var/lib/kiosk/sqlite-tmp" in text, unit
        assert "kiosk/sqlite-tmp" in text.split("StateDirectory=")[1].splitlines()[0], unit


def test_the_kiosk_command_sets_sqlites_own_temp_folder_for_its_process(tmp_path, monkeypatch):
    """SQLite read ``SQLITE_TMPDIR`` when ``sqlite3`` was imported, before the command knew
    its data dir: the variable alone changed nothing in the command's own process."""
    from checkpoint.cli.sqlite_temp import keep_sqlite_temp_in_data_dir, use_for_sqlite

    monkeypatch.delenv("SQLITE_TMPDIR", raising=False)
    (tmp_path / "sqlite-tmp").mkdir()
    try:
        keep_sqlite_temp_in_data_dir(argparse.Namespace(data=tmp_path))
        with sqlite3.connect(":memory:") as db:
            (folder,) = db.execute("PRAGMA temp_store_directory").fetchone()
    finally:
        use_for_sqlite(None)
    assert folder == str(tmp_path / "sqlite-tmp")


def _mount(kind: str, target: Path, *options: str) -> bool:
    done = subprocess.run(  # noqa: S603
        ["mount", "-t", kind, *options, kind, str(target)], capture_output=True, check=False
    )
    return done.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="root, to mount a full tmpfs")
def test_report_and_purge_of_a_busy_month_with_a_full_tmp_folder(tmp_path):
    """The probe's scenario: $TMPDIR a full tmpfs (SQLite's temp folder but for the kiosk's
    own), a log of 30,000 passages: ``kiosk report`` and ``kiosk purge`` said the card was
    full and exited 1 (the purge kept personal data past retention). They run."""
    full, data = tmp_path / "full", tmp_path / "data"
    full.mkdir()
    data.mkdir()
    if not _mount("tmpfs", full, "-o", "size=64k"):
        pytest.skip("no tmpfs mount here")
    try:
        with contextlib.suppress(OSError), (full / "fill").open("wb") as fill:
            while True:
                fill.write(b"\0" * 4096)
                fill.flush()
        _busy_month(data / "kiosk.db", 30_000)
        env = {k: v for k, v in os.environ.items() if k != "SQLITE_TMPDIR"}
        env["TMPDIR"] = str(full)
        # The data dir named ($KIOSK_DATA, as kiosk-admin sets it) and its sqlite-tmp made
        # (systemd's StateDirectory, scripts/install): never --db's folder by itself.
        env["KIOSK_DATA"] = str(data)
        (data / "sqlite-tmp").mkdir()
        kiosk = Path(sys.executable).with_name("kiosk")
        db = str(data / "kiosk.db")
        for verb in (["report", "--day", "2026-03-02"], ["purge", "--older-than", "1"]):
            done = subprocess.run(  # noqa: S603
                [str(kiosk), *verb, "--db", db, *(["--trust-clock"] if "purge" in verb else [])],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, (verb, done.stderr[-500:])
            assert "is full" not in done.stderr
    finally:
        subprocess.run(["umount", str(full)], check=False)  # noqa: S603, S607


def _busy_month(path: Path, rows: int) -> None:
    """A log of ``rows`` passages on 2026-03-02, one an hour apart by ``seq``'s hour."""
    clock = FakeClock(start=datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    with EventLog(path, "gate-1", clock, synchronous="NORMAL") as log:
        log.append(EventDraft(direction="in", decision="pass", reasons=("ok",)))
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO events (seq, id, kiosk_id, ts, boot_id, mono_ns, clock_synced,"
            " direction, decision, reasons, kind, flags, personal_digest, prev_hash, hash)"
            " SELECT i, 'id-' || i, kiosk_id,"
            " substr(ts, 1, 11) || printf('%02d', (i / 3600) % 24) || substr(ts, 14),"
            " boot_id, mono_ns, clock_synced, direction, decision, reasons, kind, flags,"
            " personal_digest, prev_hash, hash FROM events, n WHERE seq = 1",
            [rows],
        )
