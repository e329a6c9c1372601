"""``kiosk bench``'s store section counts what a passage writes to the card (docs/bench.md)."""

from __future__ import annotations

import os

import pytest

from checkpoint.bench import store as store_bench
from kiosk.store import EventLog


@pytest.fixture
def index(data_dir):
    """The log's WAL index, held until after the log's close (``full_log`` needs it)."""
    with store_bench.held_index(data_dir / "kiosk.db") as held:
        yield held


@pytest.fixture
def full_log(data_dir, clock, index):
    log = EventLog(data_dir / "kiosk.db", "test-gate", clock, "FULL").open()
    yield log
    log.close()


def _shm_locks(path) -> list[str]:
    """This process's POSIX locks on the file at ``path`` (``/proc/locks``), without each
    line's ordinal (``12:``), which moves as other processes take and drop locks."""
    inode = f":{os.stat(path).st_ino} "
    with open("/proc/locks", encoding="ascii") as locks:
        return sorted(
            line.split(None, 1)[1] for line in locks if inode in line and f" {os.getpid()} " in line
        )


def test_the_wal_index_is_read_without_dropping_the_logs_locks_on_it(full_log, index):
    """The bench read ``-shm`` by ``open()`` and closed it while its log was open: closing any
    descriptor of a file drops the process's POSIX locks on it, SQLite's dead-man-switch
    lock on the index too (another process's connection could then take the index for
    unused and begin it again under the log)."""
    full_log.append(store_bench.bench_draft())
    held = _shm_locks(index.path)
    assert held  # SQLite's, while the log is open
    store_bench._wear(full_log, appends=3, index=index)
    assert _shm_locks(index.path) == held


def test_one_append_is_one_commit_and_its_pages_in_the_wal(full_log, index):
    for _ in range(5):  # past the first pages a new file allocates
        full_log.append(store_bench.bench_draft())
    wear = store_bench._wear(full_log, index=index, appends=20)
    assert wear["commits_per_event"] == 1.0
    # One fsync a commit (FULL); no checkpoint in 20 appends.
    assert wear["fsyncs_per_event"] == 1.0
    assert wear["events_per_checkpoint"] is None
    # The row, its four index entries (time, pass, household, not purged yet), the tally and
    # the high-water mark: each a page of its own in the WAL.
    assert 7 <= wear["wal_frames_per_event"] <= 9
    assert wear["wal_bytes_per_event"] == pytest.approx(wear["wal_frames_per_event"] * 4120, 1)
    if wear["bytes_written_per_event"] is not None:  # the kernel counts per-task I/O
        assert wear["bytes_written_per_event"] >= wear["wal_bytes_per_event"]
    assert full_log.verify().ok


def test_the_automatic_checkpoints_and_their_syncs_are_counted(full_log, index):
    full_log.submit(lambda db: db.execute("PRAGMA wal_autocheckpoint = 40"))
    wear = store_bench._wear(full_log, index=index, appends=30)
    assert wear["commits_per_event"] == 1.0
    # ~8 pages an append: a checkpoint every ~5 appends, each two syncs (the WAL, then the
    # database) and one more when the WAL begins again.
    assert 3 <= wear["events_per_checkpoint"] <= 8
    assert 1.3 <= wear["fsyncs_per_event"] <= 2.0


def test_a_normal_mode_log_syncs_only_at_its_checkpoints(data_dir, clock):
    with store_bench.held_index(data_dir / "normal.db") as index:
        log = EventLog(data_dir / "normal.db", "test-gate", clock, "NORMAL").open()
        try:
            log.append(store_bench.bench_draft())  # a new WAL's header is synced once
            wear = store_bench._wear(log, appends=20, index=index)
        finally:
            log.close()
    assert wear["commits_per_event"] == 1.0
    assert wear["fsyncs_per_event"] == 0.0


@pytest.mark.slow
def test_the_journal_lines_of_ordinary_passes_are_counted():
    """A replay (~1 s): residents pass through the engine on the simulated devices."""
    assert store_bench._log_lines(2) == 0.0


def test_a_wal_index_it_cannot_read_leaves_its_counts_null(full_log, index, monkeypatch):
    """Never a made-up figure (docs/bench.md): no index (exclusive locking, not WAL), no
    pages, syncs or checkpoints counted from it."""
    monkeypatch.setattr(store_bench.ShmIndex, "read", lambda self: None)
    wear = store_bench._wear(full_log, index=index, appends=3)
    assert wear["commits_per_event"] == 1.0
    nulls = ("fsyncs_per_event", "wal_frames_per_event", "wal_bytes_per_event")
    assert [wear[name] for name in (*nulls, "events_per_checkpoint")] == [None] * 4
