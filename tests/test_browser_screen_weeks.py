"""The unattended kiosk screen left alone for weeks, in headless Chromium against the real
daemon on fakes (``test_browser_kiosk.KioskDemo``): requests that hang, a picture that no
longer paints, a second window opened by a key, polling loops that multiply."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from test_browser import wait_for
from test_browser_kiosk import SIZE, KioskDemo, open_kiosk, serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[KioskDemo]:
    yield from serving(KioskDemo(tmp_path_factory.mktemp("kiosk-weeks")))


@pytest.fixture
def context(browser) -> Iterator[Any]:
    ctx = browser.new_context(viewport=SIZE)
    yield ctx
    ctx.close()


@pytest.fixture
def quick_beats(monkeypatch) -> None:
    """Beats every 0.5 s, stale after 3 s, to keep these short."""
    from ui import kiosk_screen

    monkeypatch.setattr(kiosk_screen, "BEAT_S", 0.5, raising=False)
    monkeypatch.setattr(kiosk_screen, "BEAT_STALE_S", 3.0, raising=False)


def watch_answer(demo: KioskDemo) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{demo.url}/kiosk/watch", timeout=5) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def pump(page: Any, ms: int) -> None:
    """Let ``ms`` of the page's time pass (Playwright runs route handlers only while called)."""
    for _ in range(ms // 50):
        page.wait_for_timeout(50)


def test_beats_that_hang_do_not_pile_up_and_are_given_up_in_time(demo, context, quick_beats):
    # The daemon busy, or a connection half open: a beat that never got an answer stayed
    # open, and the next one, and the next: Chromium's six connections to the daemon were
    # soon all beats waiting for nothing, and the stream could not open again. One beat at
    # a time, each given up by its deadline.
    page = context.new_page()
    hung: list[Any] = []
    gone: list[str] = []
    # Beats in flight counted in the page itself: Playwright's route of the next beat can
    # reach this process before the failure of the one the page gave up (CI saw "2").
    page.add_init_script(
        "window.__beats = {open: 0, most: 0}; const real = window.fetch.bind(window);"
        " window.fetch = (url, options) => { if (!String(url).includes('/kiosk/beat'))"
        " return real(url, options); const b = window.__beats; b.open += 1;"
        " b.most = Math.max(b.most, b.open);"
        " return real(url, options).finally(() => { b.open -= 1; }); };"
    )
    page.route("**/kiosk/beat*", lambda route: hung.append(route))  # never answered
    page.on("requestfailed", lambda r: "/kiosk/beat" in r.url and gone.append(r.url))
    open_kiosk(page, demo)
    pump(page, 4000)  # eight beats' time
    assert len(hung) >= 2, hung  # the page kept beating...
    assert page.evaluate("window.__beats.most") == 1  # ...one at a time...
    assert len(gone) >= len(hung) - 1  # ...each given up, not left open
    page.unroute("**/kiosk/beat*")
    pump(page, 1500)
    assert watch_answer(demo)[0] == 200  # answered beats count again


def test_a_language_switch_that_hung_does_not_leave_the_link_dead(demo, context):
    # The language link asks the daemon first; an ask that never got an answer (the daemon
    # restarting under it) left the page "leaving" for good: the link did nothing any more,
    # and a visitor's language never went back to the site's.
    page = context.new_page()
    asked: list[Any] = []

    def hang_first(route: Any) -> None:
        asked.append(route)
        if len(asked) > 1:
            route.continue_()

    open_kiosk(page, demo)
    page.route("**/kiosk?lang=en", hang_first)
    page.click("#k-lang")
    wait_for(lambda: page.wait_for_timeout(50) or asked, 5)
    pump(page, 8000)  # longer than any request's deadline
    page.click("#k-lang")
    wait_for(lambda: page.wait_for_timeout(50) or "lang=en" in page.url, 10)


def test_a_screen_that_stopped_painting_is_seen_so_the_screen_unit_restarts_it(
    demo, context, quick_beats
):
    # A hung compositor (or GPU process) leaves the page's main thread running: its timers
    # still fired, its beats still came, and the watch said "listening" under a picture
    # frozen on the screen. A beat is sent from a frame's callback only, so a page that
    # gets no frames any more goes silent. (No frames: requestAnimationFrame never calls
    # back, as Chromium's callbacks stop when no frame is drawn.)
    page = context.new_page()
    open_kiosk(page, demo)
    wait_for(lambda: watch_answer(demo)[0] == 200, 5)
    pump(page, 3500)  # longer than the stale time: frames come, beats keep it up
    assert watch_answer(demo)[0] == 200
    page.evaluate("window.requestAnimationFrame = () => 0")  # no frame is drawn any more
    wait_for(lambda: page.wait_for_timeout(50) or watch_answer(demo)[0] == 503, 15)
    code, text = watch_answer(demo)
    assert code == 503 and "frozen" in text, text
    assert page.evaluate("window.kioskView !== undefined")  # its main thread still ran


def beats_of(page: Any) -> list[str]:
    sent: list[str] = []
    page.on("request", lambda r: "/kiosk/beat" in r.url and sent.append(r.url))
    return sent


def sounds(page: Any) -> int:
    return int(page.evaluate("window.kioskSounds || 0"))


def test_a_second_kiosk_window_neither_chimes_twice_nor_beats_for_the_first(
    demo, context, quick_beats
):
    # A key on a keyboard plugged in (Ctrl+N while a page loads, or on Chromium's error page)
    # opened a second kiosk window over the first: both chimed each result, a beat apart,
    # both spoke, and the live window beat for the one hidden behind it. One page of the
    # screen owns the chime, the voice and the beat: the newest (the one on top), and the
    # one left when it closes (Ctrl+W).
    first = context.new_page()
    open_kiosk(first, demo)
    second = context.new_page()
    open_kiosk(second, demo)
    first_beats, second_beats = beats_of(first), beats_of(second)
    pump(second, 1500)
    demo.play_step("forged", 0)
    second.wait_for_selector("body.look-deny")
    first.wait_for_selector("body.look-deny")
    pump(second, 500)
    assert (sounds(first), sounds(second)) == (0, 1)
    assert second_beats and not first_beats, (first_beats, second_beats)
    second.close()  # Ctrl+W on the window on top
    pump(first, 1500)
    assert first_beats  # the one left beats...
    demo.play_step("fever", 0)
    wait_for(lambda: first.wait_for_timeout(50) or sounds(first) == 1, 10)  # ...and chimes


#: The page's stream, driven by the test: views sent as the daemon would, nothing else.
SCRIPTED_STREAM = """() => {
  window.streams = [];
  class ScriptedStream extends EventTarget {
    constructor(url) { super(); this.url = url; this.readyState = 1; streams.push(this); }
    close() { this.readyState = 2; }
  }
  ScriptedStream.CONNECTING = 0; ScriptedStream.OPEN = 1; ScriptedStream.CLOSED = 2;
  window.EventSource = ScriptedStream;
  window.sendView = (view) => streams[streams.length - 1].dispatchEvent(
    new MessageEvent('view', {data: JSON.stringify(view)}));
}"""
AT_GATE = {"phase": "scan", "look": "idle", "prompt": "-", "preview": True, "dirs_live": True}
GONE = {"phase": "idle", "look": "idle", "prompt": "-", "preview": False, "dirs_live": True}


def scripted(context: Any, demo: KioskDemo) -> Any:
    page = context.new_page()
    page.add_init_script(f"({SCRIPTED_STREAM})()")
    page.goto(f"{demo.url}/kiosk")
    assert page.evaluate("document.body.dataset.hasPreview") == "yes"  # the demo's camera
    return page


def test_the_last_persons_picture_is_not_shown_after_they_left(demo, context):
    # A preview frame asked for while someone was at the gate came back after they had left
    # (a slow answer): it was put on the screen over the standby panel and stayed there, the
    # previous person's face and pass in front of everyone walking by, until the next one.
    page = scripted(context, demo)
    held: list[Any] = []
    page.route("**/kiosk/preview.jpg", lambda r: held.append(r))
    page.evaluate("v => sendView(v)", AT_GATE)
    wait_for(lambda: page.wait_for_timeout(50) or held, 5)
    page.evaluate("v => sendView(v)", GONE)  # they left; the frame is still on its way
    held[0].fulfill(status=200, content_type="image/jpeg", body=b"\xff\xd8\xff\xd9")
    pump(page, 1000)
    assert page.evaluate("document.getElementById('k-preview-img').hidden")
    assert page.is_visible("#k-standby")


def test_the_preview_polls_once_however_often_people_come_and_go(demo, context):
    # Someone left while a frame was on its way and the next one came before it arrived: the
    # old frame's answer started its polling again beside the new one. Over weeks of people
    # coming and going the page asked the camera for frames many times over, every 500 ms.
    page = scripted(context, demo)
    held: list[Any] = []
    page.route("**/kiosk/preview.jpg", lambda r: held.append(r))  # each one waits
    for _ in range(3):
        count = len(held)
        page.evaluate("v => sendView(v)", AT_GATE)
        wait_for(lambda n=count: page.wait_for_timeout(50) or len(held) > n, 5)
        page.evaluate("v => sendView(v)", GONE)
    page.evaluate("v => sendView(v)", AT_GATE)
    wait_for(lambda: page.wait_for_timeout(50) or len(held) >= 4, 5)
    answered = len(held)
    for route in held:  # all answered at once: nobody is at the gate
        route.fulfill(status=204)
    pump(page, 1500)
    waiting = len(held) - answered
    assert waiting == 1, waiting  # one poll, one frame on its way


class RenamedDemo(KioskDemo):
    """The same kiosk after its config was changed (another site name) and the daemon
    restarted, as docs/operations.md says to: ``sudo systemctl restart kiosk``."""

    async def _start_daemon(self) -> Any:
        from checkpoint import demo

        base = demo.demo_config(self.port)
        site = base.site.model_copy(update={"site_name": "安康苑"})
        return await demo.start_demo(
            self.data_dir, self.port, config=base.model_copy(update={"site": site})
        )


def test_a_config_changed_and_the_daemon_restarted_reaches_the_screen_by_itself(tmp_path, browser):
    # The config is changed and the daemon restarted (the site's name, its language or time
    # zone, the direction buttons, a camera added; or a release gone back by hand): the
    # screen's page reconnected to the new daemon and went on showing what it was loaded
    # with, for weeks, until someone restarted the screen too. The page learns that what it
    # was built from has changed and loads itself again, once nobody is at the gate.
    first = KioskDemo(tmp_path / "before")
    first.start()
    context = browser.new_context(viewport=SIZE)
    page = context.new_page()
    daemons = [first]
    try:
        open_kiosk(page, first)
        assert page.inner_text(".k-site") == "幸福里小区"
        first.stop()
        again = RenamedDemo(tmp_path / "after")
        again.port = first.port  # the same address, as systemd restarts it
        again.start()
        daemons.append(again)
        wait_for(lambda: page.wait_for_timeout(100) or page.inner_text(".k-site") == "安康苑", 40)
        page.wait_for_selector("body:not(.offline)")
    finally:
        context.close()
        daemons[-1].stop()
