"""The kiosk screen as a queue of residents meets it, in headless Chromium against the real
daemon on fakes (``test_browser_kiosk.KioskDemo``): what a screen shows when its link to the
daemon stalls and comes back."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_browser import wait_for, wait_idle
from test_browser_kiosk import SIZE, KioskDemo, check_legible, open_kiosk, serving
from test_ui_kiosk import DECIDED, IDLE, deny_for

from ui.kiosk_screen import banner_view
from ui.views import kiosk_view

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class ResidentDemo(KioskDemo):
    """A result stays 6 s after its decision: the gate (a 2 s pulse) locks well before the
    screen goes idle, as at a real gate (3 s pulse, 4 s hold), even on a loaded machine."""

    result_hold_s = 6.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[KioskDemo]:
    yield from serving(ResidentDemo(tmp_path_factory.mktemp("kiosk-resident")))


@pytest.fixture
def page(browser) -> Iterator[Any]:
    context = browser.new_context(viewport=SIZE)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert errors == []


def longer_deny_hold(page: Any, seconds: int) -> None:
    """Serve /kiosk with the page's minimum deny hold at ``seconds`` (``data-deny-hold-s``),
    so a stall can be placed inside the hold on a loaded machine."""

    def rewrite(route: Any) -> None:
        response = route.fetch()
        html = response.text()
        marker = 'data-deny-hold-s="'
        start = html.index(marker) + len(marker)
        end = html.index('"', start)
        route.fulfill(response=response, body=html[:start] + str(seconds) + html[end:])

    page.route("**/kiosk", rewrite)


def test_a_deny_held_on_screen_does_not_come_back_after_the_link_stalled(demo, page):
    # A fever deny is held on screen (at least 6 s) after the engine went idle; the idle view
    # waits for the hold. The daemon's loop then stalls (a slow SD card) long enough for the
    # offline screen, and comes back with only ticks: nothing changed at the gate. The
    # offline screen had thrown the waiting idle view away, so the previous person's deny
    # came back and stayed, in red, for everyone walking up, until someone scanned.
    longer_deny_hold(page, 20)
    open_kiosk(page, demo)
    demo.play_step("forged", 0)
    page.wait_for_selector("body.look-deny")
    wait_idle(demo)  # the engine's own hold (6 s) is over; the screen's (20 s) is not
    page.wait_for_timeout(1000)  # the idle view has reached the page
    assert "look-deny" in page.evaluate("document.body.className")
    blocked = threading.Event()
    demo.loop.call_soon_threadsafe(lambda: (blocked.set(), time.sleep(6)))
    assert blocked.wait(5)
    page.wait_for_selector("body.offline", timeout=8000)
    wait_for(lambda: not page.evaluate("document.body.classList.contains('offline')"), 15)
    back_at = time.monotonic()
    try:
        page.wait_for_selector("body.look-idle", timeout=3000)
    except Exception:  # noqa: BLE001 - say what the screen shows instead
        shown = page.evaluate("document.body.className")
        raise AssertionError(
            f"{time.monotonic() - back_at:.1f} s after the link came back: {shown}"
        ) from None
    assert not page.is_visible("#k-result")


@pytest.mark.parametrize(("lang", "size"), [("zh-CN", SIZE), ("en", SIZE), ("en", (1024, 600))])
def test_measure_again_with_the_pass_shown_again_fits_a_small_panel(demo, browser, lang, size):
    # The what-to-do line after a failed measurement names the pass too (a code starts the
    # next passage): it must still fit an 800x480 and a 1024x600 panel, in both languages.
    width, height = size if isinstance(size, tuple) else (size["width"], size["height"])
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        open_kiosk(page, demo, "" if lang == "zh-CN" else "?lang=en")
        demo.play_step("implausible", 0)
        page.wait_for_selector("body.look-remeasure")
        prompt = page.inner_text("#k-prompt")
        assert ("通行码" if lang == "zh-CN" else "pass QR code") in prompt
        check_legible(page, f"remeasure-{lang}-{width}x{height}", chinese=lang == "zh-CN")
        wait_idle(demo)
    finally:
        context.close()


class Link:
    """A TCP link between the screen's browser and the daemon that can go dead the way a
    network does: ``cut()`` silently stops every connection open now (no FIN, no RST: the
    browser's side stays open and hears nothing), while connections made afterwards work,
    as after a switch or Wi-Fi came back and the daemon had forgotten the old ones."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.generation = 0
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self.generation += 1

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, upstream]
            born = self.generation
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b, born), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, born: int) -> None:
        try:
            while (data := src.recv(65536)) and born == self.generation:
                dst.sendall(data)
        except OSError:
            return
        if born == self.generation:  # closed by its end, not cut: pass the close on
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.close()


def test_the_screen_comes_back_by_itself_after_its_link_went_dead(demo, browser):
    # A screen on another machine (paired with the screen key): the network between it and
    # the daemon drops and comes back, and the daemon has forgotten the old connection. The
    # browser's EventSource never hears of it (nothing arrives, so nothing fails), and the
    # screen stayed on "connection lost" until a TCP keepalive noticed, a minute or more
    # after the link was back, or for good behind a proxy that keeps its side open.
    link = Link(demo.port)
    context = browser.new_context(viewport=SIZE)
    page = context.new_page()
    try:
        page.goto(f"http://127.0.0.1:{link.port}/kiosk")
        wait_for(lambda: page.evaluate("window.kioskView !== undefined"))
        link.cut()
        page.wait_for_selector("body.offline", timeout=8000)
        cut_at = time.monotonic()
        try:
            wait_for(lambda: not page.evaluate("document.body.classList.contains('offline')"), 20)
        except AssertionError:
            raise AssertionError("still offline 20 s after the link came back") from None
        assert time.monotonic() - cut_at < 20
    finally:
        context.close()
        link.close()


def test_gate_open_is_not_shown_in_front_of_a_locked_gate(demo, page):
    # After the pulse the gate locks and the pass stays on screen (result_hold_s): the page
    # restarted "Gate open, go through within 2 s" there, in front of a locked gate; then
    # (without it) the green "通过 / 请通行" stayed there until the hold ended.
    open_kiosk(page, demo)
    engine = demo.session.core.runner.engine
    demo.play_step("ok", 0, holder="陈静")
    page.wait_for_selector("body.look-pass")
    wait_for(lambda: page.is_visible("#k-gate"), 5)  # the countdown while it is open
    wait_for(lambda: not engine.gate_is_open and engine.state == "decided", 10)
    page.wait_for_selector("body.look-idle", timeout=3000)  # the locked state's view
    assert engine.state == "decided"  # still the engine's hold
    assert page.inner_text("#k-prompt") == "闸门已关闭。如未通过，请到保安处"
    assert not page.is_visible("#k-gate"), page.inner_text("#k-gate")
    assert not page.is_visible("#k-result") and not page.is_visible("#k-hello")
    check_legible(page, "gate-closed")
    wait_idle(demo)


#: The page's stream, scripted: ``kioskSay(kind, data)`` delivers one event of the newest
#: stream, ``kioskBreak()`` breaks it as a daemon that went away does. Any view the server can
#: make is shown this way without playing a passage through the devices.
SCRIPTED_STREAM = """
window.kioskStreams = [];
window.EventSource = class {
  constructor(url) { this.url = url; this.readyState = 1; this.on = {}; kioskStreams.push(this); }
  addEventListener(kind, f) { (this.on[kind] = this.on[kind] || []).push(f); }
  close() { this.readyState = 2; }
};
window.EventSource.CLOSED = 2;
window.kioskSay = (kind, data) => {
  const s = kioskStreams[kioskStreams.length - 1];
  for (const f of s.on[kind] || []) f({ data: JSON.stringify(data) });
};
window.kioskBreak = () => {
  const s = kioskStreams[kioskStreams.length - 1];
  s.readyState = 2;
  s.onerror();
};
"""


def scripted(browser: Any, size: tuple[int, int] = (800, 480)) -> Any:
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    context.add_init_script(SCRIPTED_STREAM)
    return context


def open_scripted(page: Any, demo: KioskDemo, query: str = "") -> None:
    page.goto(f"{demo.url}/kiosk{query}")
    page.wait_for_function("window.kioskStreams.length > 0")


def say_view(page: Any, view: dict[str, Any]) -> None:
    page.evaluate("(v) => kioskSay('view', v)", view)
    page.wait_for_function("(id) => window.kioskView.result_id === id", arg=view["result_id"])


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize(
    ("reason", "look"), [("sensor_fault", "fault"), ("temp_implausible", "remeasure")]
)
def test_connection_lost_after_an_amber_result_can_be_read(demo, browser, lang, reason, look):
    # The daemon went away while a device fault (or a measure-again) was on the screen, as
    # it does when a failing device takes the daemon down: the offline screen came up in the
    # amber look's dark ink on its charcoal, "连接中断 / CONNECTION LOST" and what to do at
    # 1.1:1, a dark shape on a dark screen.
    from test_browser_kiosk_touch import CONTRAST
    from test_ui_kiosk import DECIDED, deny_for

    from ui.views import kiosk_view

    context = scripted(browser)
    page = context.new_page()
    try:
        open_scripted(page, demo, f"?lang={lang}")
        view = kiosk_view(DECIDED, deny_for(reason, temp_c=None), lang) | {"result_id": "r1"}
        say_view(page, view)
        page.wait_for_selector(f"body.look-{look}")
        page.evaluate("kioskBreak()")
        page.wait_for_selector("body.offline")
        page.wait_for_timeout(400)  # the background's transition
        assert page.is_visible(".k-offline .k-word")
        assert page.evaluate(CONTRAST) == []
    finally:
        context.close()


#: Nearly every note the banner can carry at once: seven lines on an 800x480 screen.
FULL_BANNER = {
    "deciding": False,
    "faults": {"thermometer": "x", "reader": "y", "gate": "z", "air": "below range"},
    "clock": {"synced": False},
}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_long_deny_is_not_covered_by_a_full_banner(demo, browser, lang):
    # A deny with four reasons and a fever, under a banner of six notes: on the English
    # 800x480 screen the banner lay over the temperature.
    notes = banner_view(FULL_BANNER, lang, lists_stale_h=130)
    assert len(notes) >= 6
    reasons = ("pass_expired", "quota_exceeded", "outside_hours", "fever")
    decision = deny_for(*reasons, temp_c=38.4)
    view = kiosk_view(DECIDED, decision, lang, fever_c=37.3, hours="08:30–17:30, 20:00–08:00")
    context = scripted(browser)
    page = context.new_page()
    try:
        open_scripted(page, demo, "" if lang == "zh-CN" else "?lang=en")
        page.evaluate("(n) => kioskSay('banner', n)", notes)
        say_view(page, kiosk_view(IDLE, None, lang))
        assert page.is_visible("#k-banner")  # the notes, for whoever comes up
        check_legible(page, f"idle-full-banner-{lang}", chinese=lang == "zh-CN")
        say_view(page, view)
        assert page.is_visible("#k-temp")
        check_legible(page, f"deny-4-reasons-full-banner-{lang}", chinese=lang == "zh-CN")
    finally:
        context.close()
