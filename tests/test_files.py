"""``kiosk.files.read_bounded``: a file the kiosk did not write is never read whole."""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest

from kiosk import calibration, secrets
from kiosk.calibration import Calibration, CalibrationError
from kiosk.files import UnreadableFile, read_bounded, sqlite_read_at_rest, sqlite_whole_file


def test_a_file_at_the_limit_is_read_and_one_byte_more_is_refused(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    assert read_bounded(path, 10) == b"x" * 10
    with pytest.raises(UnreadableFile, match="larger than 9 bytes") as caught:
        read_bounded(path, 9)
    assert caught.value.why == "too_large"


def test_an_endless_device_is_refused_unread():
    with pytest.raises(UnreadableFile, match=r"not a regular file nor a pipe \(a device\)"):
        read_bounded("/dev/zero", 4096)
    with pytest.raises(UnreadableFile, match=r"not a regular file nor a pipe"):
        read_bounded("/dev/null", 4096)


def _read_in_a_thread(path, limit=100):
    """``read_bounded(path, limit)`` in a thread, its outcome; a read still blocked after 10 s
    fails the test rather than hanging the suite (the FIFO's open blocked for ever)."""
    outcome: list[object] = []

    def read():
        try:
            outcome.append(read_bounded(path, limit))
        except UnreadableFile as exc:
            outcome.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "read_bounded blocked on the pipe"
    return outcome[0]


def _fed_fifo(fifo, data):
    """A writer thread that opens ``fifo``, writes ``data`` and closes it; a reader of the
    test's own (never read) keeps the FIFO open so that the writer's open does not wait, and
    the writer is in before the caller reads: what ``<(cat c.toml)`` is to the verb."""
    held = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    opened = threading.Event()

    def write():
        fd = os.open(fifo, os.O_WRONLY)
        opened.set()
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    assert opened.wait(10), "the writer could not open the FIFO"
    return writer, held


def test_a_pipe_is_read_as_its_writer_writes_it(tmp_path):
    """Before: refused, "not a regular file (a device or a pipe)": `kiosk check-config
    <(cat c.toml)` and `... | kiosk check-config /dev/stdin` no longer worked."""
    fifo = tmp_path / "kiosk.toml"
    os.mkfifo(fifo)
    writer, held = _fed_fifo(fifo, b"[site]\n" * 5)
    try:
        assert _read_in_a_thread(fifo) == b"[site]\n" * 5
    finally:
        writer.join(10)
        os.close(held)


def test_a_pipe_is_bounded_as_a_file(tmp_path):
    fifo = tmp_path / "list.csv"
    os.mkfifo(fifo)
    writer, held = _fed_fifo(fifo, b"x" * 101)
    try:
        refused = _read_in_a_thread(fifo)
    finally:
        writer.join(10)
        os.close(held)
    assert isinstance(refused, UnreadableFile), refused
    assert refused.why == "too_large"


def test_a_pipe_with_no_writer_is_read_empty_at_once_not_waited_on(tmp_path):
    """A config or list file that is a FIFO nobody writes hung the verb for ever (``open``
    waits for a writer): read at once, empty (the caller says it sets nothing)."""
    fifo = tmp_path / "kiosk.toml"
    os.mkfifo(fifo)
    assert _read_in_a_thread(fifo) == b""
    link = tmp_path / "link.toml"
    link.symlink_to(fifo)
    assert _read_in_a_thread(link) == b""


def test_check_config_reads_a_pipe(tmp_path, capsys):
    """`kiosk check-config <(cat c.toml)`: the shell hands it /dev/fd/N, a pipe."""
    from checkpoint.cli import main

    read, write = os.pipe()
    try:
        os.write(write, b'[site]\nkiosk_id = "gate-1"\n')
        os.close(write)
        assert main(["check-config", f"/dev/fd/{read}"]) == 0
    finally:
        os.close(read)
    assert "ok" in capsys.readouterr().out


@pytest.mark.parametrize("verb", [["check-config"], ["lists", "import"]])
def test_a_verb_given_a_pipe_nobody_writes_says_it_is_empty_exit_2(tmp_path, capsys, verb):
    from checkpoint.cli import main

    fifo = tmp_path / "list.csv"
    os.mkfifo(fifo)
    codes: list[int] = []
    argv = [*verb, str(fifo)] + (["--db", str(tmp_path / "k.db")] if len(verb) > 1 else [])
    worker = threading.Thread(target=lambda: codes.append(main(argv)), daemon=True)
    worker.start()
    worker.join(10)
    assert codes == [2], codes or "blocked on the pipe"
    assert "not a regular file" not in capsys.readouterr().err


def test_missing_and_unreadable_files_say_which(tmp_path):
    with pytest.raises(UnreadableFile, match="cannot read") as missing:
        read_bounded(tmp_path / "nowhere", 10)
    assert missing.value.why == "missing"
    with pytest.raises(UnreadableFile, match="cannot read") as folder:
        read_bounded(tmp_path, 10)
    assert folder.value.why == "unreadable"
    assert str(tmp_path) not in str(folder.value)  # the caller's error names the file


def test_a_calibration_file_pointing_at_an_endless_device_is_refused_not_read(tmp_path):
    path = tmp_path / "calibration.json"
    os.symlink("/dev/zero", path)
    with pytest.raises(CalibrationError, match="not a regular file"):
        Calibration.load(path)
    assert Calibration.load(tmp_path / "absent.json") == Calibration()  # missing: the default
    assert calibration.MAX_CALIBRATION_BYTES >= 200 * calibration.MAX_POINTS


def test_a_credential_larger_than_any_is_one_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(secrets, "MAX_SECRET_BYTES", 64)
    (tmp_path / "session_key").write_text("k" * 65)
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    with pytest.raises(secrets.SecretError, match="session_key.*larger than 64 bytes"):
        secrets.get_secret("session_key", env)
    (tmp_path / "session_key").write_text("k" * 64 + "\n")
    with pytest.raises(secrets.SecretError):  # the newline counts: 65 bytes
        secrets.get_secret("session_key", env)
    (tmp_path / "session_key").write_text("k" * 63 + "\n")
    assert secrets.get_secret("session_key", env) == "k" * 63


def test_a_temp_file_a_power_cut_left_beside_a_file_is_removed_by_its_next_write(tmp_path):
    """A power cut between write_atomic's temp file and its rename leaves ``.NAME.xxxxxxxx``
    (a pass card's payload, a cut-off calibration): it stayed beside the file for ever."""
    from kiosk.files import write_atomic

    target = tmp_path / "card.png"
    target.write_bytes(b"old")
    left = tmp_path / ".card.png.k2j_4h5g"
    left.write_bytes(b"half a ca")
    others = [tmp_path / n for n in (".card.png.bak", ".card.png.toolong12", ".other.png.k2j_4h5g")]
    for other in others:
        other.write_bytes(b"not ours")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert not left.exists()
    assert all(other.read_bytes() == b"not ours" for other in others)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["card.png", *(o.name for o in others)]
    )


def test_a_linked_log_at_rest_is_read_with_the_wal_beside_its_file_not_beside_the_link(tmp_path):
    """A log on another disk linked into the data dir, its last rows still in the -wal SQLite
    keeps beside the file (a daemon killed before its checkpoint): the -wal was looked for
    beside the link, none found, and the log read ``immutable`` without those rows (a restore
    then took an archive behind this Pi's log for the same log; review of 674867d8)."""
    (tmp_path / "card").mkdir()
    (tmp_path / "data").mkdir()
    target, link = tmp_path / "card" / "kiosk.db", tmp_path / "data" / "kiosk.db"
    link.symlink_to(target)
    writer = sqlite3.connect(target)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")  # the rows stay in the -wal
        writer.execute("CREATE TABLE t(x)")
        writer.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
        writer.commit()
        assert (tmp_path / "card" / "kiosk.db-wal").exists()
        assert not sqlite_whole_file(link)
        reader = sqlite_read_at_rest(link)
        try:
            assert reader.execute("SELECT count(*) FROM t").fetchone() == (5,)
        finally:
            reader.close()
    finally:
        writer.close()
    assert sqlite_whole_file(link)  # the writer's close moved the -wal in and removed it
