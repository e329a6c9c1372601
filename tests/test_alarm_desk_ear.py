"""A reader that failed, came back and failed three more times while every tablet slept
(no live stream open) showed nothing of it: the alarm desk was handed the bus's alarms only
by the open streams (``FeedStream.new_alarms``), so a device's repeat faults went uncounted
and no card was drawn until a stream happened to be open. The desk hears the bus itself
from the console's start (``AlarmDesk.follow``); a stream only reads it."""

from __future__ import annotations

import asyncio
import re

from guard_support import make_app, signed_in

from kiosk.alarms import ALARMS_HEARD


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
