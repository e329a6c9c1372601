"""The daemon's stop does not wait behind an export (``HelperProcessPages.shutdown``).

Before: ``shutdown`` took the class lock that ``_ask`` holds for as long as a page takes (an
export reading a stalled card: up to ``PAGE_TIMEOUT_S``, 60 s), so the stop's page-helper
step waited for it, and a new helper could be started for the page afterwards. Now the
helper of a page under way is terminated at once, and never replaced for it: the page is
built in the daemon's process (a helper stopped otherwise, ``shutdown``), or refused as the
log's reads are at its close when the daemon's stop closed the pages (``close``).

No sleeps: the helper is a process that never answers (it waits for a signal), and every
wait is bounded by ``WAIT_S`` so that a regression fails instead of hanging."""

from __future__ import annotations

import subprocess
import sys
import threading
import types

import pytest

from checkpoint import export_helper
from checkpoint.export_helper import HelperProcessPages, HelperStopped
from kiosk.store import LogClosing

WAIT_S = 10.0  # an upper bound for a test to fail instead of hanging, never a sleep
REQUEST = ("events.db", 0, 5, (), False)


@pytest.fixture
def stuck_helper(monkeypatch):
    """The helper of an export stuck on a stalled card: it takes the request and never
    answers, nor ends when its stdin closes; only a signal ends it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import signal; signal.pause()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    monkeypatch.setattr(HelperProcessPages, "_proc", proc)
    yield proc
    proc.kill()
    proc.wait(WAIT_S)
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None and not pipe.closed:
            pipe.close()


@pytest.fixture
def asked(monkeypatch):
    """Set once a page has been asked of the helper (its reply awaited)."""
    event = threading.Event()
    real = export_helper.select.select

    def select(*args):
        event.set()
        return real(*args)

    monkeypatch.setattr(export_helper, "select", types.SimpleNamespace(select=select))
    return event


def test_a_stop_does_not_wait_behind_an_export_under_way(stuck_helper, asked, monkeypatch):
    outcome: list[BaseException | object] = []

    def ask() -> None:
        try:
            outcome.append(HelperProcessPages()._ask(REQUEST))
        except BaseException as exc:  # noqa: BLE001 - looked at below
            outcome.append(exc)

    asking = threading.Thread(target=ask, name="export")
    asking.start()
    assert asked.wait(WAIT_S)  # the export is under way, the class lock held
    stopping = threading.Thread(target=HelperProcessPages.shutdown, name="stop")
    stopping.start()
    stopping.join(WAIT_S)
    assert not stopping.is_alive()  # not behind the export's 60 s
    asking.join(WAIT_S)
    assert not asking.is_alive()
    assert stuck_helper.wait(WAIT_S) is not None  # the helper was ended
    [said] = outcome
    assert isinstance(said, HelperStopped)
    assert HelperProcessPages._proc is None
    assert stuck_helper.stdout is not None and stuck_helper.stdout.closed  # retired


def test_the_page_of_a_stopped_helper_is_built_here_not_by_a_new_helper(
    stuck_helper, asked, monkeypatch
):
    started: list[object] = []
    monkeypatch.setattr(HelperProcessPages, "_start", classmethod(lambda cls: started.append(1)))
    built: list[tuple[object, ...]] = []

    class InProcess:
        def build(self, *args):
            built.append(args)
            return b"page", 1, 2, 3

    monkeypatch.setattr("kiosk.export.InProcessPages", InProcess)
    store = types.SimpleNamespace(path="events.db")
    pages: list[object] = []
    asking = threading.Thread(
        target=lambda: pages.append(HelperProcessPages().build(store, 0, 5, frozenset(), False))
    )
    asking.start()
    assert asked.wait(WAIT_S)
    HelperProcessPages.shutdown()
    asking.join(WAIT_S)
    assert pages == [(b"page", 1, 2, 3)] and len(built) == 1
    assert started == []  # no helper started again for it


def test_an_idle_helper_is_told_to_end_and_waited_for(monkeypatch):
    """Nothing under way: its stdin closed, it ends by itself (the helper's own loop)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.buffer.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    monkeypatch.setattr(HelperProcessPages, "_proc", proc)
    HelperProcessPages.shutdown()
    assert proc.returncode == 0  # ended by the closed pipe, not killed
    assert HelperProcessPages._proc is None


class WatchedLock:
    """The class lock that a page holds for as long as it takes, saying when a second page
    has come to wait for it (its first blocking ``acquire``: the second asked)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked = 0
        self.second = threading.Event()

    def acquire(self, blocking: bool = True) -> bool:
        if blocking:
            self._asked += 1
            if self._asked == 2:
                self.second.set()
        return self._lock.acquire(blocking)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def test_pages_asked_when_the_stop_closes_the_helper_are_refused_not_given_a_new_one(
    stuck_helper, asked, monkeypatch
):
    """Before: the stop's shutdown of the helper left the pages of the requests under way to
    go on: the one the helper was building was built in the daemon's process, and one waiting
    for it (or asked after) started a new helper after the stop. Now the daemon's stop closes
    its pages (``close``): each is refused as the log's reads are at its close
    (``LogClosing``: 503, "the checkpoint is stopping") and no helper is started."""
    started: list[object] = []
    monkeypatch.setattr(HelperProcessPages, "_start", classmethod(lambda cls: started.append(1)))
    lock = WatchedLock()
    monkeypatch.setattr(HelperProcessPages, "_lock", lock)
    monkeypatch.setattr("kiosk.export.InProcessPages", None)  # nothing built here either
    pages = HelperProcessPages()
    store = types.SimpleNamespace(path="events.db")
    outcomes: list[object] = []

    def page() -> None:
        try:
            outcomes.append(pages.build(store, 0, 5, frozenset(), False))
        except BaseException as exc:  # noqa: BLE001 - looked at below
            outcomes.append(exc)

    under_way = threading.Thread(target=page, name="export-1")
    under_way.start()
    assert asked.wait(WAIT_S)  # the first page is with the helper
    waiting = threading.Thread(target=page, name="export-2")
    waiting.start()
    assert lock.second.wait(WAIT_S)  # the second waits for it
    pages.close()
    for thread in (under_way, waiting):
        thread.join(WAIT_S)
        assert not thread.is_alive()
    assert [type(o) for o in outcomes] == [LogClosing, LogClosing]
    page()  # one asked after the stop
    assert type(outcomes[-1]) is LogClosing
    assert started == []  # no helper started after the stop
    assert stuck_helper.wait(WAIT_S) is not None  # the one under way was ended


def test_pages_closed_by_a_stop_are_opened_by_the_next_start(monkeypatch):
    """A daemon started again on the same core (``Daemon.start``) asks its pages of a helper
    again, not 503 for ever."""
    fresh = types.SimpleNamespace(poll=lambda: None)
    monkeypatch.setattr(HelperProcessPages, "_proc", None)
    monkeypatch.setattr(HelperProcessPages, "_start", classmethod(lambda cls: fresh))
    pages = HelperProcessPages()
    pages.close()
    with pytest.raises(HelperStopped):
        pages.helper()
    pages.open()
    assert pages.helper() is fresh


def test_a_page_whose_helper_failed_after_the_stop_closed_the_pages_is_refused(monkeypatch):
    """Before: a page the helper answered with a failure after the daemon's stop closed the
    pages (``close``) was built in the daemon's process, reading the log at its close; it is
    refused as the others are (``LogClosing``)."""
    monkeypatch.setattr("kiosk.export.InProcessPages", None)  # nothing built here
    pages = HelperProcessPages()

    def failed(request):
        pages.close()  # the stop comes while the helper builds the page
        return False, b"database is locked", 0, 0, 0

    monkeypatch.setattr(pages, "_ask", failed)
    monkeypatch.setattr(HelperProcessPages, "_failed", None)
    with pytest.raises(LogClosing):
        pages.build(types.SimpleNamespace(path="events.db"), 0, 5, frozenset(), False)
