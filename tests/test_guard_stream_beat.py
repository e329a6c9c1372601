"""The console's stream says it is alive in a way its page can hear: a named ``beat`` event
(an SSE comment never reaches the page, which then could not tell a quiet stream from a dead
one), and it opens with the kiosk's state (a page reopening its stream after a drop draws
"Now at the gate" as it is, not as it was)."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from guard_support import WAIT_S, add_event
from test_ui_kiosk import _guard_app, read_sse


def test_a_quiet_stream_sends_a_named_beat_with_its_period(guard_core, monkeypatch):
    """Before: ``: keep-alive`` every 15 s, a comment EventSource never hands to the page."""
    monkeypatch.setattr("ui.guard.live.HEARTBEAT_S", 0.01)
    add_event(guard_core)
    app, cookie = _guard_app(guard_core)
    stream = read_sse(
        app,
        "/guard/events?after=0&lang=en",
        headers={"cookie": cookie},
        until=lambda ev: sum(1 for n, _ in ev if n == "beat") >= 2,
    )
    events = asyncio.run(asyncio.wait_for(stream, WAIT_S))  # fails, never hangs, without
    names = [name for name, _ in events if name != "status"]  # read_sse's own last entry
    assert names[:3] == ["row", "alarms", "state"]
    assert names[3:] == ["beat", "beat"]  # nothing but beats while nothing happens
    # How long the page may wait for the next one, the site's local day (a page open past
    # midnight dates the rows it drew yesterday: guard.js) and the server's clock (the time a
    # dropped feed is said disconnected since, never the tablet's).
    now = guard_core.clock.now()
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    now_ms = int(now.timestamp() * 1000)
    left_s = 12 * 3600  # the session's time left: the page's banner counts to it
    beat = {"every_s": 0.01, "today": today, "now_ms": now_ms, "session_left_s": left_s}
    assert events[3][1] == beat
    assert "prompt" in events[2][1]  # the kiosk's view, as the page was drawn with


def test_the_live_page_says_how_often_the_stream_beats(guard_client, guard_core):
    """The page knows the period before its stream's first beat (a drop before it)."""
    from guard_support import login

    login(guard_client)
    assert 'data-beat-s="15.0"' in guard_client.get("/guard").text
