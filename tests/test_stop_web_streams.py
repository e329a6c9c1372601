"""The stop and the web's requests under way: the live streams end cleanly at its start
(``EventBus.end_streams``), and a slow request gets its answer or the log's close's 503,
never cut by the web server's graceful timeout into a 500 with a traceback (uvicorn's own,
before: 1 s after the signal, before the log's close)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import httpx
import pytest

from checkpoint.app import STOP_BUDGET_S, Daemon, build_core
from kiosk.bus import EventBus
from kiosk.config import parse_config

WAIT_S = 10.0


def test_a_live_stream_ends_at_the_stops_start_and_one_asked_after_ends_at_once():
    bus = EventBus()
    stream = bus.subscribe(stream=True)
    engine = bus.subscribe(name="peers-news")  # not a web client's: it goes on
    bus.end_streams()
    assert stream.closed and not engine.closed
    late = bus.subscribe(stream=True)
    assert late.closed and bus.subscribers == 1  # only the engine's
    bus.publish({"type": "state", "state": "idle"})
    assert engine.get_nowait() == {"type": "state", "state": "idle"}
    bus.open_streams()  # a start again
    assert not bus.subscribe(stream=True).closed


def _slow_route(app, core, close_began: threading.Event, entered: threading.Event) -> None:
    """``GET /api/v1/test-slow``: a read that outlasts the web server's first wait: it reads
    the log once the log's close began (refused: the 503), as a long export would."""

    def read() -> int:
        entered.set()
        close_began.wait(WAIT_S)
        return len(core.store.reader().table_names())

    @app.get("/api/v1/test-slow")
    async def slow() -> dict[str, int]:
        return {"tables": await asyncio.to_thread(read)}


@pytest.mark.slow  # a real server and the stop's own waits
def test_a_stop_ends_the_live_stream_cleanly_and_a_slow_request_gets_503_not_500(
    data_dir, monkeypatch, caplog
):
    import ui.app

    close_began, entered = threading.Event(), threading.Event()
    made = ui.app.create_app

    def create_app(core):
        app = made(core)
        _slow_route(app, core, close_began, entered)
        return app

    monkeypatch.setattr(ui.app, "create_app", create_app)
    config = parse_config({"site": {"kiosk_id": "test-gate"}, "web": {"port": 0}})

    async def scenario() -> tuple[list[str], httpx.Response, float]:
        core = await asyncio.to_thread(build_core, config, data_dir)
        close = core.store.close

        def store_close() -> None:
            close_began.set()  # (the read then comes once the close refuses reads)
            close()

        monkeypatch.setattr(core.store, "close", store_close)
        daemon = Daemon(core)
        await daemon.start()
        lines: list[str] = []
        async with (
            httpx.AsyncClient(base_url=daemon.url, timeout=WAIT_S) as client,
            client.stream("GET", "/kiosk/events") as stream,
        ):
            assert stream.status_code == 200
            chunks = stream.aiter_text()
            lines.append(await anext(chunks))  # the stream is open
            slow = asyncio.create_task(client.get("/api/v1/test-slow"))
            await asyncio.to_thread(entered.wait, WAIT_S)
            began = time.monotonic()
            stopping = asyncio.create_task(daemon.stop())
            lines.extend([chunk async for chunk in chunks])  # a clean end, or raises
            response = await slow
            await stopping
            took = time.monotonic() - began
        core.close()
        return lines, response, took

    with caplog.at_level(logging.INFO):
        lines, response, took = asyncio.run(scenario())
    assert lines and lines[0].startswith("retry:")
    assert response.status_code == 503, response.text
    assert response.json() == {"detail": "the checkpoint is stopping"}
    assert took < STOP_BUDGET_S
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "Exception in ASGI application" not in said
    assert "timeout graceful shutdown exceeded" not in said
    assert not [r for r in caplog.records if r.exc_info], said
    assert "the checkpoint is stopping" in response.text


@pytest.mark.slow  # a real server, started twice
def test_a_start_after_a_stop_of_the_same_core_serves_live_streams_again(data_dir, monkeypatch):
    """The stop ends the live streams (``EventBus.end_streams``) and leaves the bus so; the
    next start on that core opens them again (``EventBus.open_streams``): else the screen's
    stream would end where it begins, its page reconnecting in a loop and showing nothing."""
    config = parse_config({"site": {"kiosk_id": "test-gate"}, "web": {"port": 0}})

    async def scenario() -> tuple[list[str], str]:
        core = await asyncio.to_thread(build_core, config, data_dir)
        close = core.store.close
        monkeypatch.setattr(core.store, "close", lambda: None)  # the first stop's: kept open
        first = Daemon(core)
        await first.start()
        await first.stop()
        assert core.bus.streams_ended
        monkeypatch.setattr(core.store, "close", close)
        daemon = Daemon(core)
        await daemon.start()
        try:
            async with (
                httpx.AsyncClient(base_url=daemon.url, timeout=WAIT_S) as client,
                client.stream("GET", "/kiosk/events") as stream,
            ):
                assert stream.status_code == 200
                chunks = stream.aiter_text()
                opening = [await anext(chunks)]  # retry, view, banner, edition: the page's own
                while "event: edition" not in "".join(opening):
                    opening.append(await anext(chunks))
                core.bus.publish({"type": "state", "state": "awaiting_code"})  # from the bus
                delivered = await asyncio.wait_for(anext(chunks), WAIT_S)
        finally:
            await daemon.stop()
            core.close()
        return opening, delivered

    opening, delivered = asyncio.run(scenario())
    assert opening[0].startswith("retry:")
    assert delivered.startswith("event: view\n") and '"phase":"scan"' in delivered, delivered
