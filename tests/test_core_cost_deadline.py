"""A device worker starts its thread with its first call, not when it is built: a runner
built and closed without a device call (most tests, the Pi's start) starts none."""

from __future__ import annotations

import threading

import pytest

from kiosk.deadline import DeviceWorker
from kiosk.devices import SensorFault

WAIT_S = 5.0


def _threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"device-{name}"]


def test_a_worker_starts_no_thread_until_its_first_call():
    worker = DeviceWorker("lazy-first", WAIT_S, SensorFault)
    try:
        assert _threads("lazy-first") == []
        assert worker.call_sync(lambda: 42) == 42
        assert len(_threads("lazy-first")) == 1
        assert worker.call_sync(lambda: 43) == 43
        assert len(_threads("lazy-first")) == 1
    finally:
        worker.stop()


def test_stopping_a_never_called_worker_starts_no_thread_and_later_calls_are_not_run():
    worker = DeviceWorker("lazy-stopped", 0.01, SensorFault)
    worker.stop()
    assert _threads("lazy-stopped") == []
    ran: list[int] = []
    with pytest.raises(SensorFault, match="no answer within 10 ms"):
        worker.call_sync(ran.append, 1)
    assert _threads("lazy-stopped") == [] and ran == []


def test_callers_racing_on_a_fresh_worker_start_one_thread_and_every_call_runs():
    worker = DeviceWorker("lazy-race", WAIT_S, SensorFault)
    ran: list[int] = []
    go = threading.Barrier(4)

    def queue_one(i: int) -> None:
        go.wait(WAIT_S)
        worker.call_after(ran.append, i)

    callers = [threading.Thread(target=queue_one, args=(i,)) for i in range(4)]
    try:
        for t in callers:
            t.start()
        for t in callers:
            t.join(WAIT_S)
        assert worker.wait_idle(WAIT_S)
        assert sorted(ran) == [0, 1, 2, 3]
        assert len(_threads("lazy-race")) == 1
    finally:
        worker.stop()
