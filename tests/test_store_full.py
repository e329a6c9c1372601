"""Disk full, I/O and read-only faults: the append fails cleanly, health says so, and logging
resumes by itself when the storage comes back.

The portable tests make SQLite itself return ``SQLITE_FULL`` with ``PRAGMA max_page_count``
(the same code path as a full SD card). Where the test runs as root and may mount, a real
1 MiB tmpfs is filled to the brim; elsewhere that test skips. A remount read-only cannot be
forced while the file is open, so I/O errors and read-only faults are injected at the
connection instead.
"""

from __future__ import annotations

import contextlib
import sqlite3

import pytest
from support import tiny_tmpfs

from kiosk import store
from kiosk.devices import Health
from kiosk.store import EventDraft, EventLog, StoreFault

BIG_NOTE = {"note": "x" * 3000}  # a row that needs fresh pages


def draft(**overrides) -> EventDraft:
    fields = {"direction": "in", "decision": "pass", "person": BIG_NOTE, "temp_c": 36.5}
    fields.update(overrides)
    return EventDraft(**fields)


def fill_database(log: EventLog) -> None:
    """Cap the file at its current size: the next page SQLite needs is 'disk full'."""
    pages = log.submit(lambda db: db.execute("PRAGMA page_count").fetchone()[0])
    log.submit(lambda db: db.execute(f"PRAGMA max_page_count = {pages}"))


def free_space(log: EventLog) -> None:
    log.submit(lambda db: db.execute("PRAGMA max_page_count = 1073741823"))


def row_counts(log: EventLog) -> tuple[int, int, str]:
    r = log.reader()
    return (
        r.execute("SELECT count(*) FROM events").fetchone()[0],
        r.execute("SELECT count(*) FROM audit").fetchone()[0],
        r.execute("SELECT value FROM meta WHERE key = 'events.seq'").fetchone()[0],
    )


@pytest.fixture
def alerts() -> list[Health]:
    return []


@pytest.fixture
def log(tmp_path, clock, alerts):
    event_log = EventLog(tmp_path / "kiosk.db", "gate-1", clock, on_health=alerts.append).open()
    yield event_log
    event_log.close()


def test_disk_full_append_raises_store_fault_and_commits_nothing(log):
    for _ in range(3):
        log.append(draft())
    fill_database(log)
    before = row_counts(log)

    with pytest.raises(StoreFault) as info:
        log.append(draft())

    assert info.value.reason == "store_fault"
    assert "SQLITE_FULL" in str(info.value)
    assert row_counts(log) == before
    assert log.last_seq == 3
    assert log.verify().ok


def test_disk_full_turns_health_to_fault_and_alerts_once(log, alerts, clock):
    log.append(draft())
    fill_database(log)
    started = clock.monotonic_ns()
    for _ in range(3):
        clock.advance(1)
        with pytest.raises(StoreFault):
            log.append(draft())

    health = log.health()
    assert health.state == "fault"
    assert health.detail.startswith("last write failed: the ") and " is full (" in health.detail
    assert health.since_mono_ns == started + 1_000_000_000  # when the fault began
    assert [h.state for h in alerts] == ["fault"]


def test_logging_resumes_when_space_returns_without_losing_a_seq(log, alerts, clock):
    log.append(draft())
    fill_database(log)
    for _ in range(2):
        with pytest.raises(StoreFault):
            log.append(draft())
    clock.advance(30)
    free_space(log)  # the first successful write after the fault

    event = log.append(draft())

    assert event.seq == 2  # failed writes consumed no seq
    assert log.health().state == "ok"
    assert [h.state for h in alerts] == ["fault", "ok"]
    recovered = log.audits()[-1]
    assert recovered["action"] == "store.recovered"
    assert recovered["detail"]["error"] == "SQLITE_FULL"
    assert recovered["detail"]["failed_writes"] == 2
    assert recovered["detail"]["fault_for_s"] == 30.0
    assert log.verify().ok


def test_small_appends_keep_working_while_big_ones_fail(log):
    # A nearly full page still takes a small decision row: the log degrades, not dies.
    log.append(draft(person=None))
    fill_database(log)
    with pytest.raises(StoreFault):
        log.append(draft(person={"note": "y" * 20000}))
    small = log.append(draft(person=None))
    assert small.seq == 2
    assert log.health().state == "ok"


def test_disk_full_during_audit_and_submit_is_a_store_fault_too(log):
    fill_database(log)
    with pytest.raises(StoreFault):
        log.audit("guard-7", "note", {"text": "z" * 20000})

    def fill_more(db) -> None:
        db["filler"].insert_all({"x": "w" * 5000} for _ in range(10))

    with pytest.raises(StoreFault):
        log.submit(fill_more)
    assert log.health().state == "fault"
    assert log.audits() == []


# --- a real tiny filesystem (root only) ----------------------------------------------------


def test_real_full_filesystem_faults_then_recovers_when_a_file_is_deleted(tmp_path, clock):
    with tiny_tmpfs(tmp_path / "mnt") as mnt, EventLog(mnt / "kiosk.db", "gate-1", clock) as log:
        log.append(draft())
        filler = mnt / "filler"
        # Unbuffered: a buffered file keeps the chunk that did not fit and fails again at close.
        with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
            while True:  # take every free byte
                f.write(b"\0" * 65536)
        committed = 1
        with pytest.raises(StoreFault):
            for _ in range(200):  # a few may still fit in already-allocated WAL pages
                log.append(draft())
                committed += 1
        assert log.health().state == "fault"
        assert log.last_seq == committed

        filler.unlink()
        event = log.append(draft())

        assert event.seq == committed + 1
        assert log.health().state in ("ok", "degraded")  # 1 MiB is below min_free_mb
        assert log.verify().ok


# --- I/O error and read-only: the connection is replaced before the retry ------------------


class FlakyConnection(sqlite3.Connection):
    """A real connection that can be told to fail the way a dying SD card does."""

    failing: tuple[str, int, str] | None = None

    def execute(self, sql, *args):
        if FlakyConnection.failing and not sql.lstrip().upper().startswith("PRAGMA"):
            name, code, message = FlakyConnection.failing
            exc = sqlite3.OperationalError(message)
            exc.sqlite_errorname, exc.sqlite_errorcode = name, code
            raise exc
        return super().execute(sql, *args)


@pytest.mark.parametrize(
    "failure",
    [
        ("SQLITE_IOERR_WRITE", 778, "disk I/O error"),
        ("SQLITE_READONLY", 8, "attempt to write a readonly database"),
    ],
)
def test_io_error_or_read_only_faults_then_a_fresh_connection_resumes(
    tmp_path, clock, monkeypatch, failure
):
    opened: list[sqlite3.Connection] = []

    def connect(path, timeout_s):
        conn = sqlite3.connect(str(path), timeout=timeout_s, factory=FlakyConnection)
        opened.append(conn)
        return conn

    monkeypatch.setattr(store, "_open_connection", connect)
    monkeypatch.setattr(FlakyConnection, "failing", None)
    with EventLog(tmp_path / "kiosk.db", "gate-1", clock) as log:
        log.append(draft())
        monkeypatch.setattr(FlakyConnection, "failing", failure)
        with pytest.raises(StoreFault, match=failure[0]):
            log.append(draft())
        assert log.health().state == "fault"
        assert log.last_seq == 1

        monkeypatch.setattr(FlakyConnection, "failing", None)
        event = log.append(draft())

        assert event.seq == 2
        assert len(opened) == 2  # the suspect connection was replaced
        assert log.health().state == "ok"
        assert log.verify().ok
