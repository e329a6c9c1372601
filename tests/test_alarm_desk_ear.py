"""A reader that failed, came back and failed three more times while every tablet slept
(no live stream open) showed nothing of it: the alarm desk was handed the bus's alarms only
by the open streams (``FeedStream.new_alarms``), so a device's repeat faults went uncounted
and no card was drawn until a stream happened to be open. The desk hears the bus itself
from the console's start (``AlarmDesk.follow``); a stream only reads it."""

from __future__ import annotations

import asyncio
import contextlib
import re

import httpx
from fastapi.testclient import TestClient
from guard_support import BASE, make_app, signed_in

from kiosk.alarms import ALARMS_HEARD, DESK_QUEUE
from kiosk.devices import GateFault


def drawn(page: str) -> list[str]:
    return re.findall(r'class="a-pick" name="key" value="([^"]+)"', page)


def test_a_device_failing_again_while_no_console_streams_is_counted(guard_core):
    with signed_in(make_app(guard_core)) as tablet:
        engine, bus = guard_core.runner.engine, guard_core.bus

        async def flap() -> None:
            told = bus.subscribe(name="test-told")  # what the streams would be told
            for _ in range(3):
                engine.on_reader_fault("cam0", "camera lost")
                guard_core.clock.advance(1)
                engine.on_reader_ok("cam0")
                guard_core.clock.advance(1)
            engine.on_reader_fault("cam0", "camera lost")
            heard = 0
            while heard < 4:  # the first fault, and each of the three after it cleared
                message = await asyncio.wait_for(told.get(), 10)
                heard += message is not None and message["type"] == ALARMS_HEARD
            told.close()

        tablet.portal.call(flap)
        page = tablet.get("/guard?lang=en").text
    assert drawn(page) == ["device:reader@4"]
    assert "4 times" in page


async def told_of_a_fault(core, n: int = 1) -> int:
    """A reader fault raised ``n`` times (cleared between); how many ``ALARMS_HEARD`` the
    desk told within a second of the last (none: it is deaf)."""
    engine, bus = core.runner.engine, core.bus
    told = bus.subscribe(name="test-told")
    for _ in range(n):
        engine.on_reader_fault("cam0", "camera lost")
        core.clock.advance(1)
        engine.on_reader_ok("cam0")
        core.clock.advance(1)
    heard = 0
    try:
        while heard < n:
            message = await asyncio.wait_for(told.get(), 1)
            heard += message is not None and message["type"] == ALARMS_HEARD
    except TimeoutError:
        pass
    told.close()
    return heard


def test_the_desk_hears_again_after_the_app_restarts_in_process(guard_core):
    """A second test client (the app's shutdown, then its startup again): the desk's task was
    cancelled at the first's close and never started again, so the desk went deaf."""
    app = make_app(guard_core)
    with TestClient(app, base_url=BASE) as first:
        assert first.portal.call(told_of_a_fault, guard_core) == 1
    with TestClient(app, base_url=BASE) as second:
        assert second.portal.call(told_of_a_fault, guard_core) == 1


def test_the_desk_hears_when_the_lifespan_is_replaced(guard_core):
    """The pull bench replaces the app's lifespan: the startup that started the desk never
    ran, its ear filled and the bus dropped it."""
    app = make_app(guard_core)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield

    app.router.lifespan_context = lifespan
    with TestClient(app, base_url=BASE) as client:
        assert client.portal.call(told_of_a_fault, guard_core) == 1


def test_the_desk_hears_an_app_served_with_its_lifespan_off(guard_core):
    """uvicorn with ``lifespan="off"`` (the edge and fleet benches): the desk heard nothing
    unless a request starts it; built on a running loop (the daemon, a bench's server), it
    hears from then, before any request."""

    async def served_off() -> int:
        app = make_app(guard_core)  # built off the loop: the first request starts it
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            await client.get("/guard/login")
            told = await told_of_a_fault(guard_core)
            stopped = app.state.guard.stop_hearing()  # the daemon's stop: a request it
            await client.get("/guard/login")  # still serves does not start it again
            assert app.state.guard.hearing is stopped
        return told

    async def built_on_the_loop() -> int:
        make_app(guard_core)
        return await told_of_a_fault(guard_core)

    assert asyncio.run(served_off()) == 1
    assert asyncio.run(built_on_the_loop()) == 1


def test_a_fault_the_desk_missed_while_dropped_gets_its_card(guard_core):
    """The bus dropped the desk as slow (a burst it could not read in one tick) with a gate
    fault among what it lost: it subscribed again and re-read nothing, so the fault got no
    card of its own (and no console was told). On (re)subscribing it rebuilds the device
    cards from the faults standing now, as a reconnecting stream re-reads its rows."""
    app = make_app(guard_core)
    with signed_in(app) as tablet:
        engine, bus = guard_core.runner.engine, guard_core.bus

        async def burst() -> int:
            told = bus.subscribe(name="test-told", maxsize=100_000)
            for i in range(DESK_QUEUE + 10):  # more than the desk's queue, in one tick
                bus.publish({"type": "recorded", "n": i})
            engine.on_gate_locked(GateFault("relay stuck"))
            heard = 0
            while not heard:
                message = await asyncio.wait_for(told.get(), 10)
                heard += message is not None and message["type"] == ALARMS_HEARD
            told.close()
            return bus.dropped_total

        assert tablet.portal.call(burst) == 1  # the desk, dropped
        engine.on_gate_locked()  # the relay answers again: the card stays, news
        page = tablet.get("/guard?lang=en").text
    assert drawn(page) == ["device:gate@1"]


def test_a_reader_failing_while_the_desk_was_dropped_gets_its_card(guard_core):
    """As the gate's fault above, for a reader: the engine's reader faults (a camera or a
    scanner failing as the engine sees it) were not in the health report, so the desk
    subscribing again rebuilt a gate's or a thermometer's card from it, never a reader's."""
    app = make_app(guard_core)
    with signed_in(app) as tablet:
        engine, bus = guard_core.runner.engine, guard_core.bus

        async def burst() -> None:
            told = bus.subscribe(name="test-told", maxsize=100_000)
            for i in range(DESK_QUEUE + 10):  # more than the desk's queue, in one tick
                bus.publish({"type": "recorded", "n": i})
            engine.on_reader_fault("cam0", "camera lost")
            heard = 0
            while not heard:
                message = await asyncio.wait_for(told.get(), 10)
                heard += message is not None and message["type"] == ALARMS_HEARD
            told.close()

        tablet.portal.call(burst)
        engine.on_reader_ok("cam0")  # the camera delivers again: the card stays, news
        page = tablet.get("/guard?lang=en").text
    assert drawn(page) == ["device:reader@1"]


def test_a_reader_still_failing_when_the_console_starts_has_its_card(guard_core):
    """A restart of the console while a reader is failing (the engine's fault raised before
    the desk could hear it): the card stands from the health report, as a gate's does."""
    guard_core.runner.engine.on_reader_fault("cam0", "camera lost")
    with signed_in(make_app(guard_core)) as tablet:
        page = tablet.get("/guard?lang=en").text
    assert drawn(page) == ["device:reader@1"]
