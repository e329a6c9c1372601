"""The unattended kiosk screen: views in both languages, the SSE stream, the preview, and
that nothing personal beyond an initial reaches it. Also the guard's live stream.

SSE is tested by driving the ASGI app on the test's own event loop: the bus is published to
on that loop, the stream is read until the expected events arrive, then the client
disconnects. No sleeps, no threads.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient as _TestClient
from guard_support import BASE, SESSION_KEY, WAIT_S, add_event, close_core, make_core
from support import wait_for_frame
from test_engine import Rig

from kiosk.bus import EventBus
from kiosk.config import parse_config
from kiosk.core import Core
from kiosk.devices import CodeRead
from kiosk.privacy import greeting_name
from ui import guard, i18n, kiosk_screen
from ui.auth import COOKIE, GuardAuth
from ui.kiosk_screen import ScreenTracker, banner_view, kiosk_view

PASS_DECISION = {
    "type": "decision",
    "passage": 7,
    "seq": 12,
    "decision": "pass",
    "reasons": ["ok"],
    "direction": "in",
    "temp_c": 36.4,
    "needs_guard": False,
    "alarm": None,
    "pass_id": "a1b2c3d4e5f6",
    "household": "3-402",
    "holder_initial": "W.",
}
DENY_DECISION = PASS_DECISION | {
    "seq": 13,
    "decision": "deny",
    "reasons": ["fever"],
    "temp_c": 38.3,
    "needs_guard": True,
    "alarm": "fever",
}
GATE_OPEN = {"type": "state", "state": "gate_open", "prompt": "pass", "direction": "in"}
DECIDED = {"type": "state", "state": "decided", "prompt": "see_guard", "direction": "in"}
IDLE = {"type": "state", "state": "idle", "prompt": "show_pass", "direction": "in"}


def TestClient(app, **kw):  # noqa: N802 - the kiosk screen serves only this host's browser
    return _TestClient(app, client=("127.0.0.1", 50000), **kw)


# --- views -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lang,word,prompt",
    [("en", "PASS", "Please go through"), ("zh-CN", "通过", "请通行")],
)
def test_pass_view_shows_word_icon_temperature_initial_and_gate_countdown(lang, word, prompt):
    view = kiosk_view(GATE_OPEN, PASS_DECISION, lang, fever_c=37.3, gate_open_s=5)
    assert view["phase"] == "decided"
    assert view["result"]["kind"] == "pass"
    assert view["result"]["word"] == word and view["result"]["icon"] == "✔"
    assert view["prompt"] == prompt
    assert view["temp"] == "36.4 °C" and not view["temp_fever"]
    assert "W." in view["hello"]
    assert view["gate_closes_in_s"] == 5
    assert view["sound"] == "pass"


@pytest.mark.parametrize(
    "lang,reason,next_step",
    [
        ("en", "Temperature too high", "re-check"),
        ("zh-CN", "体温偏高", "复测"),
    ],
)
def test_deny_view_gives_the_reason_in_plain_words_and_what_to_do(lang, reason, next_step):
    view = kiosk_view(DECIDED, DENY_DECISION, lang, fever_c=37.3, gate_open_s=5)
    assert view["result"]["kind"] == "deny" and view["result"]["icon"] == "✖"
    assert view["result"]["reasons"] == [reason]
    assert next_step in view["result"]["next"]
    assert view["temp_fever"]
    assert view["gate_closes_in_s"] is None
    assert view["hello"] is None  # no greeting for a deny
    assert view["sound"] == "deny"
    assert reason in view["speak"]


@pytest.mark.parametrize(
    ("lang", "call", "expected"),
    [
        ("en", "0571-8888 1234", "please call 0571-8888 1234"),
        ("zh-CN", "0571-8888 1234", "请致电：0571-8888 1234"),
        ("en", "", "call the office"),
        ("zh-CN", "", "请联系物业"),
    ],
)
def test_with_no_guard_on_duty_the_screen_says_where_to_call(lang, call, expected):
    decision = DENY_DECISION | {"reasons": ["no_guard_on_duty"], "temp_c": 36.5}
    view = kiosk_view(DECIDED, decision, lang, fever_c=37.3, call=call)
    assert view["result"]["reasons"] == [i18n.reason_text(lang, "no_guard_on_duty")]
    assert expected in view["result"]["next"] and expected in view["speak"]


def test_an_observed_resident_going_out_is_told_to_stay_home():
    decision = DENY_DECISION | {"reasons": ["under_observation"], "temp_c": 36.5}
    assert "stay home" in kiosk_view(DECIDED, decision, "en")["result"]["next"]
    assert "留在家中" in kiosk_view(DECIDED, decision, "zh-CN")["result"]["next"]


def test_views_carry_no_personal_data_beyond_an_initial():
    for decision in (PASS_DECISION, DENY_DECISION):
        text = json.dumps(kiosk_view(GATE_OPEN, decision, "en"), ensure_ascii=False)
        assert "a1b2c3d4e5f6" not in text and "3-402" not in text


def test_a_full_name_in_a_decision_is_reduced_to_an_initial():
    view = kiosk_view(GATE_OPEN, PASS_DECISION | {"holder_initial": "Wang Fang"}, "en")
    assert "Wang" not in view["hello"] and "W." in view["hello"]


def test_prompts_follow_the_engine_states():
    measuring = {"type": "state", "state": "measuring", "prompt": "measuring"}
    assert kiosk_view(measuring, None, "en")["prompt"] == "Measuring, hold still"
    assert kiosk_view(measuring, None, "en")["preview"]
    idle = kiosk_view(IDLE, None, "zh-CN")
    assert idle["prompt"] == "请出示通行码" and idle["result"] is None
    assert not idle["preview"]
    broken = kiosk_view(IDLE | {"prompt": "out_of_order"}, None, "en")
    assert broken["phase"] == "out_of_order" and "guard" in broken["prompt"]


def test_tracker_keeps_the_decision_until_the_next_passage_starts():
    tracker = ScreenTracker(IDLE)
    tracker.feed(PASS_DECISION)
    tracker.feed(GATE_OPEN)
    assert tracker.decision is PASS_DECISION
    tracker.feed({"type": "state", "state": "decided", "prompt": "pass"})
    assert tracker.decision is PASS_DECISION
    tracker.feed(IDLE)
    assert tracker.decision is None
    assert not tracker.feed({"type": "health"})


def test_banner_names_faulty_devices_unsynced_clock_and_stale_lists():
    report = {  # the shape of core.health()
        "deciding": False,
        "devices": {
            "thermometer": {"state": "fault", "detail": "x"},
            "reader:camera": {"state": "ok", "detail": ""},
            "reader:scanner": {"state": "fault", "detail": "unplugged"},
            "gate": {"state": "ok", "detail": "closed"},
        },
        "clock": {"synced": False, "now": "2026-03-02T08:30:00+00:00"},
    }
    notes = banner_view(report, "en", lists_stale_h=30)
    assert "Self check paused — please call the guard" in notes
    assert "Device fault: thermometer" in notes
    assert "Device fault: code reader" in notes
    assert "Clock not synchronised" in notes
    assert "Lists not updated for 30 h" in notes
    ok = {"deciding": True, "devices": {"gate": {"state": "ok"}}, "clock": {"synced": True}}
    assert banner_view(ok, "en") == []
    assert banner_view({"faults": {"thermometer": "PEC"}}, "zh-CN") == ["设备故障：测温仪"]


def test_lists_stamped_ahead_of_the_clock_show_an_unknown_age_not_fresh_lists(core):
    """Lists stamped three days ahead of the clock (it stepped back since): no banner at
    all, as if fresh; now the kiosk says their age is unknown, in hours nothing false."""
    from datetime import timedelta

    from kiosk.lists import Freshness
    from ui.views import lists_stale_hours

    ahead = Freshness(updated_at=core.clock.now() + timedelta(days=3), source="bundle")
    core.lists._snapshots.amend(lambda lists: lists.with_freshness(ahead))
    shown = lists_stale_hours(core)
    assert shown is not None and shown < 0
    notes = banner_view({}, "en", lists_stale_h=shown)
    assert notes == [
        "Lists stamped after this clock's time (clock set back?): their age is unknown"
    ]
    assert "Lists have never been updated" not in notes


# --- HTTP --------------------------------------------------------------------------------


@pytest.fixture
def core(data_dir, clock, monkeypatch):
    c = make_core(data_dir, clock, monkeypatch)
    yield c
    close_core(c)


def kiosk_app(core: Core) -> FastAPI:
    app = FastAPI()
    kiosk_screen.install(app, core)
    return app


def test_kiosk_page_needs_no_login_and_speaks_the_configured_language(core):
    with TestClient(kiosk_app(core), base_url=BASE) as client:
        page = client.get("/kiosk")
        assert page.status_code == 200
        assert '<html lang="zh-CN">' in page.text and "请出示通行码" in page.text
        english = client.get("/kiosk?lang=en").text
        assert '<html lang="en">' in english and "Please show your pass QR code" in english
        assert 'href="/kiosk?lang=zh-CN"' in english  # switchable per screen


def test_kiosk_page_shows_a_decision_made_before_it_loaded(core):
    app = FastAPI()
    screen = kiosk_screen.install(app, core)
    for message in (PASS_DECISION, GATE_OPEN):  # published while another screen watched
        core.bus.publish(message)
        screen.tracker.feed(message)
    with TestClient(app, base_url=BASE) as client:
        page = client.get("/kiosk?lang=en").text
    assert "PASS" in page and "36.4 °C" in page and "result-pass" in page


def test_static_files_are_served_and_nothing_else(core):
    with TestClient(kiosk_app(core), base_url=BASE) as client:
        assert client.get("/static/kiosk.js").headers["content-type"].startswith("text/javascript")
        assert client.get("/static/style.css").status_code == 200
        assert client.get("/static/..%2Fkiosk_screen.py").status_code == 404
        assert client.get("/static/nothing.js").status_code == 404


def test_two_way_kiosk_buttons_choose_the_next_direction_from_this_page_only(core):
    with TestClient(kiosk_app(core), base_url=BASE) as client:
        page = client.get("/kiosk?lang=en").text
        assert 'data-dir="out"' in page and "Leaving" in page
        ok = client.post("/kiosk/direction", json={"direction": "out"}, headers={"Origin": BASE})
        assert ok.status_code == 200
        assert core.runner.engine.direction == "out"
        evil = client.post(
            "/kiosk/direction", json={"direction": "in"}, headers={"Origin": "http://evil.test"}
        )
        assert evil.status_code == 403
        bad = client.post("/kiosk/direction", json={"direction": "up"}, headers={"Origin": BASE})
        assert bad.status_code == 400
    assert core.runner.engine.direction == "out"


def someone_shows_a_code(core: Core) -> None:
    """A person holds up a code: the engine starts a passage (and measures next)."""
    core.runner.engine.on_code(CodeRead("KP1:ANY", "camera", core.clock.monotonic_ns()))
    assert core.runner.engine.state == "code_read"


@pytest.mark.slow
def test_preview_is_off_while_nobody_is_at_the_gate_and_a_small_jpeg_when_someone_is(
    core, monkeypatch
):
    camera = core.devices.readers[0]  # the fake camera behind the real CameraReader
    camera.step()  # opens the camera; its grab thread delivers frames from now on
    assert wait_for_frame(camera, WAIT_S)
    camera.step()  # the pipeline takes the frame: it is the reader's latest
    looked: list[int] = []
    latest = camera.latest_frame
    monkeypatch.setattr(camera, "latest_frame", lambda: looked.append(1) or latest())
    with TestClient(kiosk_app(core), base_url=BASE) as client:
        assert core.runner.engine.state == "idle"
        assert client.get("/kiosk/preview.jpg").status_code == 204
        assert client.get("/kiosk/preview.mjpeg").status_code == 204
        assert looked == []  # not even looked at
        assert 'data-has-preview="yes"' in client.get("/kiosk").text
        someone_shows_a_code(core)
        response = client.get("/kiosk/preview.jpg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[1] == kiosk_screen.PREVIEW_MAX_WIDTH


def test_preview_of_a_stale_frame_answers_204(core):
    camera = core.devices.readers[0]
    camera.step()
    assert wait_for_frame(camera, WAIT_S)
    camera.step()
    someone_shows_a_code(core)
    core.clock.advance(kiosk_screen.PREVIEW_STALE_S + 1)  # the camera stopped delivering
    with TestClient(kiosk_app(core), base_url=BASE) as client:
        assert client.get("/kiosk/preview.jpg").status_code == 204


class StillThere:
    """A request whose client stays (``is_disconnected`` never says it went)."""

    async def is_disconnected(self) -> bool:
        return False


def test_the_preview_stream_ends_at_the_stops_start_without_waiting_out_its_pause():
    """The daemon's stop ends the live streams (``EventBus.end_streams``): the MJPEG preview
    too, though someone is still at the gate, and at once, not after its next frame (at 0.5
    fps, a 2 s pause: past the web server's wait, then cut with a traceback)."""
    bus = EventBus()
    bus.publish({"type": "state", "state": "code_read"})  # someone is at the gate
    core = SimpleNamespace(bus=bus)
    screen = SimpleNamespace(core=core, preview_jpeg=lambda source: b"jpeg")

    async def scenario() -> bytes:
        frames = kiosk_screen.mjpeg_frames(StillThere(), screen, lambda: None, 0.5)
        first = await anext(frames)
        bus.end_streams()  # the stop begins
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(frames), WAIT_S)
        return first

    assert asyncio.run(scenario()).endswith(b"jpeg\r\n")
    assert kiosk_screen.someone_there(core)  # it did not end because the person left
    assert bus.subscribers == 0  # and it holds nothing of the bus after


def test_preview_without_a_camera_answers_204(data_dir, clock, monkeypatch):
    scanner_only = parse_config({"readers": {"sources": [{"type": "serial", "name": "scanner"}]}})
    core = make_core(data_dir, clock, monkeypatch, scanner_only)
    try:
        someone_shows_a_code(core)
        with TestClient(kiosk_app(core), base_url=BASE) as client:
            assert client.get("/kiosk/preview.jpg").status_code == 204
            assert 'data-has-preview="no"' in client.get("/kiosk").text
    finally:
        close_core(core)


# --- SSE, on the test's own loop ------------------------------------------------------------


def http_scope(path: str, headers: dict[str, str]) -> dict:
    """The ASGI scope of a GET of ``path`` (with its query) from 127.0.0.1 to kiosk.test."""
    path_only, _, query = path.partition("?")
    raw = [(b"host", b"kiosk.test")] + [
        (k.lower().encode(), v.encode()) for k, v in headers.items()
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path_only,
        "raw_path": path_only.encode(),
        "query_string": query.encode(),
        "headers": raw,
        "client": ("127.0.0.1", 5000),
        "server": ("kiosk.test", 80),
    }


async def read_sse(
    app: FastAPI,
    path: str,
    *,
    until: Callable[[list[tuple[str, Any]]], bool],
    on_event: Callable[[list[tuple[str, Any]]], None] | None = None,
    headers: dict[str, str] | None = None,
) -> list[tuple[str, Any]]:
    """Events ``(name, data)`` of an SSE response until ``until(events)``; then disconnect."""
    events: list[tuple[str, Any]] = []
    disconnect = asyncio.Event()
    started = False
    buffer = ""
    status: list[int] = []

    async def receive() -> dict:
        nonlocal started
        if not started:
            started = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal buffer
        if message["type"] == "http.response.start":
            status.append(message["status"])
            return
        buffer += message.get("body", b"").decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            name = data = None
            for line in block.splitlines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
            if name:
                events.append((name, data))
                if on_event:
                    on_event(events)
        if until(events):
            disconnect.set()
        if not message.get("more_body", False):
            disconnect.set()

    await asyncio.wait_for(app(http_scope(path, headers or {}), receive, send), timeout=10)
    events.append(("status", status[0]))
    return events


def test_kiosk_stream_shows_a_pass_then_a_deny_without_personal_data(core):
    app = kiosk_app(core)
    published = False

    def publish(events: list) -> None:
        nonlocal published
        if not published and len(events) >= 2:  # the current view and banner came first
            published = True
            for message in (PASS_DECISION, GATE_OPEN, IDLE, DENY_DECISION, DECIDED):
                core.bus.publish(message)

    events = asyncio.run(
        read_sse(
            app,
            "/kiosk/events?lang=en",
            on_event=publish,
            until=lambda ev: sum(1 for n, _ in ev if n == "view") >= 6,
        )
    )
    views = [data for name, data in events if name == "view"]
    results = [v["result"]["word"] if v["result"] else None for v in views]
    assert results == [None, "PASS", "PASS", None, "DENIED", "DENIED"]
    assert views[4]["result"]["reasons"] == ["Temperature too high"]
    raw = json.dumps(events, ensure_ascii=False)
    assert "a1b2c3d4e5f6" not in raw and "3-402" not in raw
    assert core.bus.subscribers == 0  # the stream unsubscribed when the screen went away


def test_kiosk_stream_updates_the_banner_on_a_health_message(core):
    app = kiosk_app(core)

    def publish(events: list) -> None:
        if len(events) == 2:
            core.bus.publish({"type": "health", "faults": {"gate": "relay"}, "deciding": False})

    events = asyncio.run(
        read_sse(
            app,
            "/kiosk/events?lang=zh-CN",
            on_event=publish,
            until=lambda ev: sum(1 for n, _ in ev if n == "banner") >= 2,
        )
    )
    banners = [data for name, data in events if name == "banner"]
    assert "设备故障：闸门" in banners[-1]


def _guard_app(core: Core) -> tuple[FastAPI, str]:
    auth = GuardAuth(core.accounts, core.clock, key=SESSION_KEY)
    app = FastAPI()
    guard.install(app, core, auth)
    alice = core.accounts.get("alice")
    assert alice is not None
    cookie, _session = auth.sessions.issue(alice)
    return app, f"{COOKIE}={cookie}"


def test_guard_stream_pushes_new_decisions_and_alarms(core):
    add_event(core)
    app, cookie = _guard_app(core)

    def publish(events: list) -> None:
        if events and events[-1][0] == "alarms" and len(events) == 2:
            event = add_event(core, decision="deny", reasons=("fever",), temp_c=38.6)
            core.bus.publish(DENY_DECISION | {"seq": event.seq})

    events = asyncio.run(
        read_sse(
            app,
            "/guard/events?after=0&lang=en",
            headers={"cookie": cookie},
            on_event=publish,
            until=lambda ev: sum(1 for n, _ in ev if n == "alarms") >= 2,
        )
    )
    rows = [data for name, data in events if name == "row"]
    assert [r["seq"] for r in rows] == [1, 2]
    assert rows[1]["fever"] and rows[1]["reasons"] == "Temperature too high"
    alarms = [data for name, data in events if name == "alarms"]
    assert alarms[0] == [] and alarms[-1][0]["kind"] == "fever"


def test_guard_stream_refuses_without_a_session(core):
    app, _cookie = _guard_app(core)
    events = asyncio.run(read_sse(app, "/guard/events", until=lambda ev: False))
    assert events[-1] == ("status", 401)


def test_a_feed_hands_over_a_queued_burst_and_stops_at_a_drop(core):
    feed = kiosk_screen.BusFeed(core)
    assert feed.ready() == []
    for message in (PASS_DECISION, GATE_OPEN, IDLE):
        core.bus.publish(message)
    assert feed.ready() == [PASS_DECISION, GATE_OPEN, IDLE]
    for n in range(core.bus.maxsize + 1):  # one more than the queue holds: dropped
        core.bus.publish({"type": "health", "n": n})
    burst = feed.ready()
    assert burst == [] and core.bus.subscribers == 0  # the drop clears the backlog
    asyncio.run(feed.aclose())


def test_screens_in_one_language_share_one_encoded_view_per_message(core, monkeypatch):
    app = kiosk_app(core)
    built: list[str] = []
    real = kiosk_screen.kiosk_view

    def counting(*args: Any, **kwargs: Any) -> dict:
        built.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(kiosk_screen, "kiosk_view", counting)

    async def two_screens() -> list[list[tuple[str, Any]]]:
        ready = asyncio.Event()
        connected = 0

        def on_event(events: list) -> None:
            nonlocal connected
            if len(events) == 2:  # this screen's first view and banner
                connected += 1
                if connected == 2:
                    ready.set()

        async def publisher() -> None:
            await ready.wait()
            for message in (IDLE, PASS_DECISION, GATE_OPEN):
                core.bus.publish(message)

        def done(ev: list) -> bool:
            return sum(1 for n, _ in ev if n == "view") >= 4

        task = asyncio.ensure_future(publisher())
        screens = await asyncio.gather(
            read_sse(app, "/kiosk/events?lang=en", on_event=on_event, until=done),
            read_sse(app, "/kiosk/events?lang=en", on_event=on_event, until=done),
        )
        await task
        return list(screens)

    first, second = asyncio.run(two_screens())
    assert first == second
    assert [v["result"]["word"] for n, v in first if n == "view" and v["result"]] == ["PASS"] * 2
    # One view per screen on connect, then each message's view built once for both screens.
    assert len(built) == 2 + 3


# --- states that cannot be confused (issue 17) ------------------------------------------------


def deny_for(*reasons: str, **extra: Any) -> dict:
    return DENY_DECISION | {"reasons": list(reasons), "alarm": None, "needs_guard": False} | extra


@pytest.mark.parametrize("reason", ["sensor_fault", "store_fault", "reader_fault", "gate_fault"])
def test_a_device_fault_is_amber_and_sends_to_the_guard_never_a_red_deny(reason):
    view = kiosk_view(DECIDED, deny_for(reason, temp_c=None), "zh-CN")
    assert view["look"] == "fault" and view["result"]["kind"] == "fault"
    assert view["result"]["word"] == "设备故障" and view["result"]["icon"] == "!"
    assert view["prompt"] == "请到保安处人工测温登记"
    assert view["result"]["reasons"] == []  # the kiosk's trouble is not the person's reason
    text = json.dumps(view, ensure_ascii=False)
    assert "禁止通行" not in text and "物业" not in text


def test_a_full_disk_with_a_real_reason_denies_for_that_reason_only():
    view = kiosk_view(
        DECIDED, deny_for("store_fault", "outside_hours"), "zh-CN", hours="08:30–17:30"
    )
    assert view["look"] == "deny"
    assert view["result"]["reasons"] == ["当前不在通行时段（08:30–17:30）"]
    assert "存储" not in json.dumps(view, ensure_ascii=False)


@pytest.mark.parametrize("reason", ["temp_implausible", "no_temperature"])
def test_a_cold_wrist_asks_to_measure_again_in_amber_without_showing_the_reading(reason):
    view = kiosk_view(DECIDED, deny_for(reason, temp_c=28.7), "zh-CN", fever_c=37.3)
    assert view["look"] == "remeasure" and view["result"]["icon"] == "↻"
    assert view["result"]["word"] == "请重新测温"
    assert view["temp"] is None and "28.7" not in json.dumps(view)
    assert view["wrist"]  # the pictogram shows where to hold it
    assert view["sound"] == "remeasure"


def test_an_implausible_reading_while_measuring_is_not_shown_as_a_temperature():
    state = {
        "type": "state",
        "state": "measuring",
        "prompt": "measure_again",
        "temperature": {"status": "implausible", "body_c": 28.7},
    }
    view = kiosk_view(state, None, "zh-CN")
    assert view["temp"] is None and view["look"] == "remeasure"
    assert view["headline"]["word"] == "请重新测温" and view["wrist"]
    ok = state | {"prompt": "measuring", "temperature": {"status": "ok", "body_c": 36.6}}
    assert kiosk_view(ok, None, "zh-CN")["temp"] == "36.6 °C"


def test_a_fever_is_a_red_deny_with_the_temperature():
    view = kiosk_view(DECIDED, DENY_DECISION, "zh-CN", fever_c=37.3)
    assert view["look"] == "deny" and view["temp"] == "38.3 °C" and view["temp_fever"]
    assert view["prompt"] == "请在旁等候，保安将为您复测"  # the what-to-do line


def test_out_of_service_has_its_own_look_and_invites_no_scan():
    view = kiosk_view(IDLE | {"prompt": "out_of_order"}, None, "zh-CN")
    assert view["phase"] == "out_of_order" and view["look"] == "out_of_service"
    assert view["headline"]["word"] == "暂停使用"
    assert not view["dirs_live"] and not view["preview"] and not view["wrist"]
    assert view["hint"] is None
    assert "通行码" not in json.dumps(view, ensure_ascii=False)


def test_idle_invites_a_scan_and_keeps_the_direction_buttons_live():
    view = kiosk_view(IDLE, None, "zh-CN")
    assert view["look"] == "idle" and view["dirs_live"]
    assert view["hint"] == "请将通行码对准此处"
    wrist = kiosk_view(IDLE | {"prompt": "step_up"}, None, "zh-CN")
    assert wrist["wrist"] and wrist["hint"] == "请将手腕靠近测温处"


def test_a_result_this_screen_never_saw_does_not_say_go_through():
    view = kiosk_view(GATE_OPEN, None, "zh-CN")
    assert view["phase"] == "idle" and view["prompt"] == "请出示通行码"


@pytest.mark.parametrize(
    "name,masked",
    [
        ("王秀英", "王*英"),
        ("王芳", "王*"),
        ("欧阳娜娜", "欧**娜"),
        ("Li Wei", "L. W."),
        ("  Madonna ", "M."),
        ("王*英", "王*英"),
        ("", ""),
    ],
)
def test_greeting_name_masks_the_middle(name, masked):
    assert greeting_name(name) == masked


def test_the_greeting_shows_a_masked_name_first_in_chinese():
    view = kiosk_view(GATE_OPEN, PASS_DECISION | {"holder_greeting": "王秀英"}, "zh-CN")
    assert view["hello"] == "王*英，您好"  # masked again here, whatever the message carried
    assert kiosk_view(GATE_OPEN, PASS_DECISION, "en")["hello"] == "Hello, W."


def test_the_engine_publishes_the_masked_greeting_not_the_name(clock, tmp_path):
    rig = Rig(clock, tmp_path)
    try:
        rig.show(rig.pass_text(household="C-303", holder="王秀英"))
        rig.emulator.person_arrives(36.6)
        rig.run(6)
        decision = rig.decisions()[0]
    finally:
        rig.close()
    assert decision["decision"] == "pass" and decision["holder_greeting"] == "王*英"
    assert "王秀英" not in json.dumps(decision, ensure_ascii=False)
    view = kiosk_view(GATE_OPEN, decision, "zh-CN")
    assert view["hello"] == "王*英，您好"


# --- the stream's ticks and the kiosk's clock ---------------------------------------------------


def test_the_stream_ticks_with_the_kiosk_clock_while_nothing_else_is_said(core, monkeypatch):
    monkeypatch.setattr(kiosk_screen, "TICK_S", 0.01)
    events = asyncio.run(
        read_sse(
            kiosk_app(core), "/kiosk/events", until=lambda ev: bool(ev) and ev[-1][0] == "tick"
        )
    )
    tick = events[-2][1]  # the last is the status
    assert tick == {"now_ms": int(core.clock.now().timestamp() * 1000)}


def test_the_stream_ticks_even_when_the_bus_only_carries_alarms(core, monkeypatch):
    monkeypatch.setattr(kiosk_screen, "TICK_S", 0.05)

    def chatter(events: list) -> None:
        for _ in range(3):
            core.bus.publish({"type": "alarm", "alarm": "fever", "state": "raised"})

    events = asyncio.run(
        read_sse(
            kiosk_app(core),
            "/kiosk/events",
            on_event=chatter,
            until=lambda ev: any(n == "tick" for n, _ in ev),
        )
    )
    assert any(name == "tick" for name, _ in events)


def test_the_page_carries_the_kiosk_clock_and_the_site_language(core):
    with TestClient(kiosk_app(core), base_url=BASE) as client:
        page = client.get("/kiosk?lang=en").text
    assert f'data-now-ms="{int(core.clock.now().timestamp() * 1000)}"' in page
    assert 'data-site-lang="zh-CN"' in page and 'data-lang="en"' in page
    assert f'data-deny-hold-s="{kiosk_screen.DENY_MIN_HOLD_S}"' in page
    assert kiosk_screen.DENY_MIN_HOLD_S >= 6


# --- words -----------------------------------------------------------------------------------

#: Latin allowed on a zh-CN screen: units, and the language switch naming itself.
LATIN_ALLOWED = {"MB", "KB", "English"}


def test_no_zh_cn_string_has_english_in_it_beyond_units():
    offenders = {}
    for key in i18n.keys():  # noqa: SIM118 - a function of the module, not a dict
        zh = re.sub(r"\{[a-z_]+\}", "", i18n.t("zh-CN", key, **_blank(key)))
        words = set(re.findall(r"[A-Za-z]{2,}", zh.replace("°C", ""))) - LATIN_ALLOWED
        if words:
            offenders[key] = words
    for code in i18n.reason_codes():
        said = (i18n.reason_text, i18n.reason_for_person, i18n.reason_next)
        for text in (say("zh-CN", code) or "" for say in said):
            if re.search(r"[A-Za-z]{2,}", text):
                offenders[code] = text
    assert offenders == {}


def _blank(key: str) -> dict[str, str]:
    zh, _en = i18n._S[key]
    return {name: "" for name in re.findall(r"\{([a-z_]+)\}", zh)}


def test_one_term_per_concept_in_chinese():
    texts = [zh for zh, _en in i18n._S.values()]
    texts += [i18n.reason_text("zh-CN", c) for c in i18n.reason_codes()]
    texts += [i18n.reason_next("zh-CN", c) or "" for c in i18n.reason_codes()]
    joined = "\n".join(texts)
    for retired in (
        "楼栋",
        "房号",
        "测温口",
        "吊销",
        "伪造",
        "摄像头待机",
        "乘员",
        "降级",
        "观察至",
    ):
        assert retired not in joined, retired
    assert i18n.t("zh-CN", "pass.role.resident") == "居民"  # the card says 居民 too
    assert i18n.t("zh-CN", "reg.unit") == i18n.t("zh-CN", "pass.household") == "户号"


def test_reader_names_are_words_on_a_chinese_screen():
    assert kiosk_screen.device_label("zh-CN", "reader:camera") == "扫码器（摄像头）"
    assert kiosk_screen.device_label("zh-CN", "reader:scanner") == "扫码器（扫码枪）"
    assert kiosk_screen.device_label("en", "reader:camera") == "code reader (camera)"
    assert kiosk_screen.device_label("zh-CN", "reader:东门") == "扫码器（东门）"
    notes = banner_view({"devices": {"reader:camera": {"state": "fault"}}}, "zh-CN")
    assert notes == ["设备故障：扫码器"]  # the readers count as one device on the kiosk


def test_the_person_at_the_gate_is_addressed_the_guard_reads_a_label():
    denied = kiosk_view(DECIDED, deny_for("quarantined"), "zh-CN")
    # The screen faces the queue: the pass, not the household's quarantine (screens.md).
    assert denied["result"]["reasons"] == ["此通行证现在不能通行"]
    assert i18n.reasons_text("zh-CN", ["quarantined"]) == "居家隔离期内"  # the guard's feed


@pytest.mark.parametrize("decision", [PASS_DECISION, DENY_DECISION], ids=["pass", "deny"])
def test_no_preview_is_fetched_behind_a_result(decision):
    """A result hides the side panel (kiosk.css ``.phase-decided .k-side``): the page kept
    fetching two preview frames a second that nobody saw, each a JPEG the Pi encoded."""
    view = kiosk_view(GATE_OPEN, decision, "en")
    assert view["phase"] == "decided" and not view["preview"]
    measuring = {"type": "state", "state": "measuring", "prompt": "measuring"}
    assert kiosk_view(measuring, None, "en")["preview"]


@pytest.mark.parametrize(
    ("lang", "reason", "shelter", "guard"),
    [
        ("en", "Air outside the thermometer's range", "shelter", "guard"),
        ("zh-CN", "气温超出测温范围", "避风处", "保安"),
    ],
)
def test_air_outside_the_trusted_range_sends_the_visitor_to_shelter_and_the_guard(
    lang, reason, shelter, guard
):
    # Winter at the gate: measuring again cannot help (no "remove gloves, show your pass again").
    decision = DENY_DECISION | {"reasons": ["air_out_of_range"], "alarm": None}
    decision["needs_guard"] = False
    view = kiosk_view(DECIDED, decision, lang, fever_c=37.3, gate_open_s=5)
    assert view["result"]["kind"] == "fault"
    assert view["result"]["reasons"] == [reason]
    assert shelter in view["result"]["next"] and guard in view["result"]["next"]
