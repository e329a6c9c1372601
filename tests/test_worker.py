"""``drivers.worker.Worker``: a driver's thread and the flag and wake-up pipe that stop it."""

from __future__ import annotations

import select
import threading

import pytest

from drivers.worker import Worker

WAIT_S = 10.0  # bounded: no test hangs on a thread that never ends


def _polling(worker: Worker, held: threading.Event, rounds: list[int]) -> None:
    """A serving loop as the scanners' (a wait in ``poll()`` beside the wake-up pipe), whose
    first device call ignores the stop until ``held`` is set (a read stuck in a driver)."""
    wake = worker.wake_fd
    held.wait(WAIT_S)
    poller = select.poll()
    if wake is not None:
        poller.register(wake, select.POLLIN)
    while not worker.stopping.is_set() and len(rounds) < 1000:
        poller.poll(60_000)
        rounds.append(1)


def test_a_second_start_before_the_last_loop_ended_is_refused_and_that_loop_still_ends():
    """A start after a stop that gave up waiting cleared the flag the old loop was still to
    read, and left it polling the wake-up pipe its stop had made readable for good: it spun
    (and two loops served one device). The second start is a clear error; the old loop sees
    its flag still set and ends; once it has, a start is sound and its stop prompt."""
    worker = Worker("test-restart")
    held, rounds = threading.Event(), []
    worker.start(_polling, worker, held, rounds)
    first = worker._thread
    with pytest.raises(RuntimeError, match="already running"):  # not stopped at all
        worker.start(_polling, worker, held, rounds)
    worker.stop(timeout_s=0)  # gave up waiting: the loop is still in its device call
    assert first is not None and first.is_alive()
    with pytest.raises(RuntimeError, match="has not ended"):
        worker.start(_polling, worker, held, rounds)
    held.set()
    worker.stop(timeout_s=WAIT_S)  # a second stop waits for the same loop
    assert not first.is_alive() and rounds == []  # it ended at once: no round on its pipe
    worker.start(_polling, worker, held, rounds)  # ended: a start is sound again
    second = worker._thread
    worker.stop(timeout_s=WAIT_S)
    assert second is not None and second is not first and not second.is_alive()
    assert len(rounds) <= 1  # woken by its own pipe, not spinning on the old one


def test_a_stopped_worker_starts_again_with_a_fresh_flag_and_pipe():
    """A restart after a stop that completed (the fake module's replug): the new loop runs
    until its own stop, which wakes its wait at once."""
    worker = Worker("test-again")
    released = threading.Event()
    released.set()
    for _ in range(3):
        rounds: list[int] = []
        worker.start(_polling, worker, released, rounds)
        thread = worker._thread
        worker.stop(timeout_s=WAIT_S)
        assert thread is not None and not thread.is_alive()
        assert len(rounds) <= 1


def test_a_loop_that_ended_by_itself_starts_again_without_leaking_its_pipe(monkeypatch):
    """A loop that returned by itself (never stopped) kept its pipe's write end open; a
    start in its place now closes it."""
    import drivers.worker as worker_module

    closed: list[int] = []
    real_close = worker_module.os.close

    def close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(worker_module.os, "close", close)
    worker = Worker("test-ended")
    ended = threading.Event()
    worker.start(ended.set)
    first = worker._thread
    assert first is not None
    first.join(WAIT_S)
    old = worker._wake_w
    assert old is not None and old not in closed
    worker.start(ended.set)  # not stopped: its loop returned (a fake module's port gone)
    assert old in closed
    worker.stop(timeout_s=WAIT_S)
