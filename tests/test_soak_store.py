"""Soak: the event log read from many short-lived threads, as the web server's worker threads
come and go for weeks (anyio ends a worker idle for 10 s and starts a fresh one for the next
request), must not keep a connection, and its file descriptors, per thread that ever read."""

from __future__ import annotations

import os
import threading

import pytest

from kiosk.store import EventDraft, EventLog

THREADS = 150


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def log(tmp_path, clock):
    event_log = EventLog(tmp_path / "kiosk.db", "gate-1", clock).open()
    yield event_log
    event_log.close()


def read_in_a_thread_that_ends(log: EventLog) -> list[int]:
    seen: list[int] = []

    def work() -> None:
        seen.append(len(log.events(0, 10)))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return seen


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_readers_of_threads_that_ended_are_closed(log):
    log.append(EventDraft(direction="in", decision="pass", temp_c=36.5))
    # Warm up: this thread's reader and SQLite's own files (the WAL index) opened once.
    assert read_in_a_thread_that_ends(log) == [1]
    baseline = open_fds()
    for _ in range(THREADS):
        assert read_in_a_thread_that_ends(log) == [1]
    # Tolerance 3: the last thread's connection (database, WAL, shared-memory files) may stay
    # open until the next reader is made; a leak is ~3 fds per ended thread (450 here).
    assert open_fds() - baseline <= 3
    assert len(log._readers) <= 1  # the last ended thread's, closed at the next reader made
