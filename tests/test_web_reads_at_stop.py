"""The event log is never closed under a read of it, whichever thread reads: each statement and
fetch on the log's readers is a use of it, taken in the thread that reads (``EventLog.reader``).
A read outlasting its request (one the web server cancelled at its end), a read no console
action counts (statistics, the live stream), a streamed body's page: the log's close waits for
each, and refuses every read from its start (``LogClosing``: a 503, a stream ended cleanly)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from guard_support import WAIT_S, add_event, close_core, console_fixtures, make_core

from checkpoint.app import Daemon, build_core
from checkpoint.notify import Notifier
from kiosk import stats
from kiosk import store as store_module
from kiosk.config import parse_config
from kiosk.deadline import Stopped
from kiosk.files import read_snapshot, streamed_rows
from kiosk.store import EventLog, LogClosing
from ui import api, i18n
from ui.app import create_app

START = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
clock, core, _, alice, admin = console_fixtures(START)
del _  # not the console alone: the daemon's whole app (``app`` below)


@pytest.fixture
def app(core):
    """The daemon's whole app (its handlers: a read refused at the log's close is a 503)."""
    return create_app(core)


def _until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)  # a poll of another thread's progress, never the behaviour tested


class Closing:
    """The log's reads in threads other than the test's blocked mid-statement (SQLite's
    progress handler, inside the step) until ``release``; ``close()`` closes the log in a
    thread of its own, as the stop's last write does; a reader closed while a read is blocked
    is counted in ``closed_under`` (and left open: closing it would crash the process)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.in_read, self.released = threading.Event(), threading.Event()
        self.armed = threading.Event()  # reads block while it is set
        self.armed.set()
        self.closed_under: list[int] = []
        self.closer: threading.Thread | None = None
        self.probe = log.reader()  # the test's own reader, never blocked

    def block(self) -> None:
        if self.armed.is_set() and not self.released.is_set():
            self.in_read.set()
            self.released.wait(WAIT_S)

    def close(self) -> None:
        self.closer = threading.Thread(target=self.log.close, name="test-close-log")
        self.closer.start()
        _until(self.close_began)

    def close_began(self) -> bool:
        """The close refuses reads (the probe's answered ``Stopped``), or closed readers."""
        if self.closed_under:
            return True
        try:
            self.probe.execute("select 1").fetchall()
        except Stopped:
            return True
        return False

    def release(self) -> None:
        self.released.set()
        assert self.closer is not None
        self.closer.join(WAIT_S)


@contextmanager
def closing_under_reads(monkeypatch, log: EventLog) -> Iterator[Closing]:
    rig = Closing(log)
    test_thread = threading.current_thread()
    real_reader, real_close_all = EventLog.reader, store_module._close_all

    def reader(self):
        db = real_reader(self)
        if threading.current_thread() is not test_thread:

            def progress() -> int:
                rig.block()
                return 0

            db.conn.set_progress_handler(progress, 1)
        return db

    def close_all(connections):
        connections = list(connections)
        if connections and rig.in_read.is_set() and not rig.released.is_set():
            rig.closed_under.append(len(connections))
            return
        real_close_all(connections)

    monkeypatch.setattr(EventLog, "reader", reader)
    monkeypatch.setattr(store_module, "_close_all", close_all)
    try:
        yield rig
    finally:
        rig.released.set()


def test_a_read_whose_request_ended_keeps_the_log_open_until_it_ends(core, monkeypatch):
    """A worker thread still reading once its request ended (a sync export cancelled at the
    web server's end, the console's uses closed as the stop closes them): the log's close
    waits for the statement under way and closes no reader under it, refuses the read's next
    step (``Stopped``: no use of a closed connection), then closes."""
    core.web_uses.close(0)  # as the stop does: no request counts any more
    answers: list[object] = []

    def export_read() -> None:
        try:
            answers.append(len(core.store.reader().execute("select * from events").fetchall()))
        except Exception as exc:  # noqa: BLE001 - the test says what it was
            answers.append(exc)

    with closing_under_reads(monkeypatch, core.store) as rig:
        worker = threading.Thread(target=export_read, name="test-worker")
        worker.start()
        assert rig.in_read.wait(WAIT_S)
        rig.close()
        still_closing = rig.closer is not None and rig.closer.is_alive()
        rig.release()
        worker.join(WAIT_S)
    assert rig.closed_under == [] and still_closing
    # The statement under way ended; the fetch after it, once the close began, refused.
    assert len(answers) == 1 and isinstance(answers[0], Stopped), answers
    assert rig.closer is not None and not rig.closer.is_alive()  # then the log closed


def test_an_unaudited_console_read_is_counted_and_a_read_asked_after_is_a_503(
    alice, core, monkeypatch
):
    """The statistics page reads the day in a worker thread and no console action counts it:
    the log's close waits for its read; asked once the close began, it is answered 503 with
    ``Retry-After`` (the checkpoint is stopping), never a 500."""
    pages: list[int] = []
    with closing_under_reads(monkeypatch, core.store) as rig:
        asking = threading.Thread(
            target=lambda: pages.append(alice.get("/guard/stats").status_code)
        )
        asking.start()
        assert rig.in_read.wait(WAIT_S)
        rig.close()
        rig.release()
        asking.join(WAIT_S)
        late = alice.get("/guard/stats", headers={"Accept": "application/json"})
    assert rig.closed_under == []
    assert pages and pages[0] in (200, 503)  # whole, or refused once the close began
    assert late.status_code == 503 and late.headers["Retry-After"] == "30", late.text[:200]
    # The stop's words, not the log's failure ("the event log is unavailable"): the checkpoint
    # will be back, nothing is wrong with its card.
    assert late.json() == {"ok": False, "error": i18n.t("zh-CN", "err.stopping")}


def test_the_api_asked_once_the_log_closes_says_the_checkpoint_is_stopping(app, core):
    """``/api/...`` asked once the log's close began: 503, ``Retry-After`` and the stop's
    words, told from a log that cannot be read (its own 503)."""
    _, token = core.tokens.create(["logs:read"])
    core.store.close()
    with TestClient(app) as office:
        answer = office.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
    assert answer.json() == {"detail": "the checkpoint is stopping"}


def test_the_events_api_asked_once_the_stop_closed_the_page_helper_says_it_is_stopping(
    app, core, monkeypatch
):
    """A page of ``/api/v1/events`` asked once the daemon's stop closed the page helper (its
    requests under way end after it): the log's 503, never a helper started after the stop."""
    from checkpoint.export_helper import HelperProcessPages

    monkeypatch.setattr(HelperProcessPages, "_start", None)  # called: a TypeError, a 500
    _, token = core.tokens.create(["logs:read"])
    assert isinstance(core.pages, HelperProcessPages)  # the daemon's, as built
    core.pages.close()
    with TestClient(app, raise_server_exceptions=False) as office:
        answer = office.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
    assert answer.json() == {"detail": "the checkpoint is stopping"}


def test_the_live_stream_ends_cleanly_at_the_logs_close_rather_than_holding_it(
    alice, core, monkeypatch
):
    """The guard's live stream reads the log now and then, holding no read between: its read
    under way when the log's close begins is waited for, its next one is refused and the
    stream ends there, cleanly (no error, nothing more sent), the log closed."""
    with closing_under_reads(monkeypatch, core.store) as rig:
        body: list[str] = []
        errors: list[BaseException] = []  # what ended the stream in the listener's thread

        def listen() -> None:
            try:
                with alice.stream("GET", "/guard/events") as stream:
                    body.extend(stream.iter_text())
            except BaseException as exc:  # noqa: BLE001 - the test says what it was
                errors.append(exc)

        listening = threading.Thread(target=listen)
        listening.start()
        assert rig.in_read.wait(WAIT_S)
        rig.close()
        rig.release()
        listening.join(WAIT_S)
    assert not listening.is_alive()
    assert errors == []  # ended, not broken off by the refused read's LogClosing
    assert rig.closed_under == []
    assert "".join(body).startswith("retry: 2000")
    assert rig.closer is not None and not rig.closer.is_alive()


def test_a_csv_export_streaming_holds_a_read_per_page_and_is_cut_at_the_logs_close(
    data_dir, clock, monkeypatch, caplog
):
    """``/api/v1/events.csv`` reads its pages after the route returned, one in each chunk's
    worker thread: the page under way when the log's close begins is waited for (no reader
    closed under it), the export holds nothing between pages, and the read after it is
    refused: the transfer is cut there, the journal saying why, nothing more sent."""
    paged = make_core(data_dir, clock, monkeypatch, parse_config({"web": {"max_page": 10}}))
    try:
        for _ in range(40):
            add_event(paged)
        _, token = paged.tokens.create(["logs:read"])
        real_read, pages = api.read_events, []
        with closing_under_reads(monkeypatch, paged.store) as rig:
            rig.armed.clear()

            def read_events(reader, after, limit):
                pages.append(after)
                if len(pages) == 2:  # the first page is out: the second blocks mid-read
                    rig.armed.set()
                return real_read(reader, after, limit)

            monkeypatch.setattr(api, "read_events", read_events)
            body: list[str] = []

            def export() -> None:
                with TestClient(create_app(paged)) as office:
                    answer = office.get(
                        "/api/v1/events.csv", headers={"Authorization": f"Bearer {token}"}
                    )
                    body.append(answer.text)

            with caplog.at_level(logging.WARNING, logger="ui.api"):
                exporting = threading.Thread(target=export)
                exporting.start()
                assert rig.in_read.wait(WAIT_S)
                rig.close()
                rig.release()
                exporting.join(WAIT_S)
        assert rig.closed_under == []
        assert rig.closer is not None and not rig.closer.is_alive()  # the log closed
        assert pages == [0, 10]  # no page asked after the refused one
        assert len(body) == 1 and len(body[0].splitlines()) == 1 + 10  # header, first page
        said = [r.getMessage() for r in caplog.records]
        assert "CSV export cut after seq 10: the checkpoint is stopping" in " ".join(said)
    finally:
        close_core(paged)


@pytest.mark.slow
def test_a_daemon_started_again_on_the_same_core_serves_the_consoles_actions(tmp_path):
    """The stop closes the console's uses of the log (``Core.web_uses``) and the API's pages
    (``Core.pages``); the next start on the same core opens them again: its audited routes
    and ``/api/v1/events`` answer as in the first run (here: to nobody signed in; a page),
    not 503 "the checkpoint is stopping" for ever."""
    data = tmp_path / "data"
    data.mkdir()
    config = parse_config({"site": {"kiosk_id": "test-gate"}, "web": {"port": 0}})

    async def one_run(core, token: str) -> tuple[int, int]:
        daemon = Daemon(core, notifier=Notifier(None))
        await daemon.start()
        try:
            async with httpx.AsyncClient(base_url=daemon.url) as client:
                answer = await client.get("/guard/export.csv", follow_redirects=False)
                bearer = {"Authorization": f"Bearer {token}"}
                page = await client.get("/api/v1/events", headers=bearer)
        finally:
            await asyncio.wait_for(daemon.stop(), WAIT_S)
        return answer.status_code, page.status_code

    async def two_runs() -> tuple[tuple[int, int], tuple[int, int]]:
        core = await asyncio.to_thread(build_core, config, data)
        _, token = await asyncio.to_thread(core.tokens.create, ["logs:read"])
        try:
            first = await one_run(core, token)
            await asyncio.to_thread(core.store.open)  # closed by the first stop
            return first, await one_run(core, token)
        finally:
            await asyncio.to_thread(core.close)

    first, again = asyncio.run(two_runs())
    assert first[0] != 503 and first[1] == 200 and again == first


# --- a reader the close already closed: every touch of it refused, never a closed connection ----


def test_a_reader_kept_across_the_logs_close_is_refused_not_a_closed_connection(core):
    """Before: a reader kept by its caller (``db = reader()`` across statements) met the
    connection the close had closed: ``sqlite3.ProgrammingError`` (a 500 with a traceback).
    Each touch of it is refused as the log's close refuses reads (``LogClosing``)."""
    add_event(core)
    db = core.store.reader()
    core.store.close()
    with pytest.raises(LogClosing):
        db.execute("select 1")
    with pytest.raises(LogClosing):
        list(db.query("select seq from events"))
    with pytest.raises(LogClosing):
        db.conn.cursor()
    with pytest.raises(LogClosing):  # a search's person_key, defined on the reader
        db.conn.create_function("person_key", 2, lambda kind, value: None, deterministic=True)


@pytest.mark.slow
def test_a_streamed_read_cut_by_the_logs_close_is_refused_not_a_closed_connection(core):
    """Before: the close between two fetches of ``streamed_rows`` left its block's
    ``cursor.close()`` on the closed connection (``ProgrammingError`` over the refusal)."""
    for _ in range(3):
        add_event(core)
    read: list[int] = []
    with (
        pytest.raises(LogClosing),
        streamed_rows(core.store.reader(), "select seq from events order by seq") as rows,
    ):
        for row in rows:
            read.append(row["seq"])
            if len(read) == 1:
                core.store.close()
    assert read == [1, 2, 3]  # the batch fetched before the close, then refused


def test_a_snapshot_read_cut_by_the_logs_close_is_refused_not_a_closed_connection(core):
    """Before: ``read_snapshot`` asked the closed connection whether it was in a transaction
    (``ProgrammingError``) after the close came between two of its statements."""
    add_event(core)
    db = core.store.reader()
    with pytest.raises(LogClosing), read_snapshot(db.conn):
        assert db.execute("select count(*) from events").fetchone() == (1,)
        core.store.close()
        db.execute("select count(*) from events")
    with pytest.raises(LogClosing), read_snapshot(db.conn):
        pass  # asked once the log closed: refused before it reads


def test_statistics_cut_by_the_logs_close_are_a_503_saying_the_checkpoint_is_stopping(
    alice, core, monkeypatch
):
    """Before: the log's close between two fetches of the day's statistics (a stop while the
    page is read) was a 500 with ``ProgrammingError`` (``cursor.close()`` on the closed
    connection); it is the stop's 503, in words, never "the log is unavailable"."""
    for _ in range(3):
        add_event(core)
    real = stats.DayOutings.count

    def count_exit(*args: Any) -> None:
        core.store.close()  # the stop, between the first row and the next fetch
        real(*args)

    monkeypatch.setattr(stats.DayOutings, "count", count_exit)
    answer = alice.get("/guard/stats")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
    assert i18n.t("zh-CN", "err.stopping") in answer.text and "Traceback" not in answer.text


def test_a_streamed_read_done_when_the_logs_close_begins_returns_its_rows(core):
    """Every row read, the close begun before the block's end: its cursor's ``close`` is
    left to the log's close, and the read returns its rows (not refused: not a 503)."""
    for _ in range(3):
        add_event(core)
    with streamed_rows(core.store.reader(), "select seq from events order by seq") as rows:
        read = [row["seq"] for row in rows]
        core.store.close()  # the block's last line: only its end meets the close
    assert read == [1, 2, 3]


def test_a_snapshot_read_done_when_the_logs_close_begins_returns_its_result(core):
    """Every statement done, the close begun before the block's end: the snapshot's
    ``rollback`` is left to the log's close, and the read returns its result."""
    add_event(core)
    db = core.store.reader()
    with read_snapshot(db.conn):
        count = db.execute("select count(*) from events").fetchone()
        core.store.close()  # the block's last line: only its end meets the close
    assert count == (1,)
