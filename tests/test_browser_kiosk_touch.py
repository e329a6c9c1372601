"""The unattended kiosk screen under the hands of residents, children and bored teenagers, in
headless Chromium with touch emulated (``has_touch``; raw touch points through the DevTools
protocol for a pinch), against the real daemon on fakes (``test_browser_kiosk.KioskDemo``):
nothing a person can do with fingers or a keyboard leaves the screen zoomed, selected,
navigated away or stuck on something else than /kiosk."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from test_browser import wait_for, wait_idle
from test_browser_kiosk import SIZE, KioskDemo, open_kiosk, serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[KioskDemo]:
    yield from serving(KioskDemo(tmp_path_factory.mktemp("kiosk-touch")))


@pytest.fixture
def touch(browser) -> Iterator[Any]:
    """A page on a touch panel (Chromium on the Pi's screen: touch, not a phone)."""
    context = browser.new_context(viewport=SIZE, has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == []


def pinch_out(page: Any, x: float, y: float) -> None:
    """Two fingers spread apart from (x, y), as a child zooming a photo does: raw touch
    points, as the panel's driver gives them to Chromium."""
    cdp = page.context.new_cdp_session(page)

    def fingers(kind: str, points: list[tuple[float, float]]) -> None:
        touch_points = [{"x": px, "y": py, "id": i} for i, (px, py) in enumerate(points)]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": touch_points})

    fingers("touchStart", [(x - 10, y), (x + 10, y)])
    for d in range(10, 200, 10):
        fingers("touchMove", [(x - 10 - d, y), (x + 10 + d, y)])
        page.wait_for_timeout(16)
    fingers("touchEnd", [])
    cdp.detach()
    page.wait_for_timeout(300)


def test_a_pinch_does_not_zoom_the_screen(demo, touch):
    # A pinch zoomed the page (the visual viewport, 4x here) and it stayed zoomed: the result
    # and the what-to-do line off the edges for everyone after, until someone pinched back.
    open_kiosk(touch, demo)
    pinch_out(touch, 400, 240)
    assert touch.evaluate("visualViewport.scale") == 1
    # A tap is still a tap.
    touch.tap(".k-dir-btn[data-dir=out]")
    touch.wait_for_selector(".k-dir-btn[data-dir=out][aria-pressed=true]")
    touch.tap(".k-dir-btn[data-dir=in]")
    touch.wait_for_selector(".k-dir-btn[data-dir=in][aria-pressed=true]")


DEFAULTS_PREVENTED = """() => {
  window.prevented = {};
  for (const kind of ['contextmenu', 'dragstart']) {
    // The window's bubbling listener runs last: what the browser itself then does.
    window.addEventListener(kind, (e) => { window.prevented[kind] = e.defaultPrevented; });
  }
}"""


def test_a_long_press_or_a_drag_opens_no_menu_selects_nothing_and_drags_nothing(demo, touch):
    # A long press (as a right click) opened Chromium's menu over the kiosk (back, reload,
    # print, save as...); a press held on the words selected them in blue, left on screen;
    # the language link could be dragged away and dropped, which opens it.
    open_kiosk(touch, demo)
    touch.evaluate(DEFAULTS_PREVENTED)
    touch.click("#k-prompt", button="right")
    assert touch.evaluate("window.prevented") == {"contextmenu": True}
    touch.dblclick("#k-prompt")
    assert touch.evaluate("getSelection().toString()") == ""
    touch.drag_and_drop("#k-lang", "#k-prompt")
    assert touch.evaluate("window.prevented.dragstart") in (None, True)  # no drag, or refused
    assert touch.url == f"{demo.url}/kiosk"
    for selector in ("body", "#k-prompt", "#k-word", "#k-lang"):
        assert touch.eval_on_selector(selector, "e => getComputedStyle(e).userSelect") == "none"


#: What a USB keyboard plugged into the kiosk (or a child at one) presses: reload, print,
#: save, open a file, find, zoom (kept in Chromium's profile across restarts), back, forward,
#: the developer tools.
BROWSER_KEYS = (
    "F5",
    "Control+r",
    "Control+Shift+r",
    "Control+p",
    "Control+s",
    "Control+o",
    "Control+f",
    "Control+Equal",
    "Control+Minus",
    "Control+0",
    "Alt+ArrowLeft",
    "Alt+ArrowRight",
    "F12",
    "Control+Shift+i",
)

KEYS_PREVENTED = """() => {
  window.keys = [];
  window.addEventListener('keydown', (e) => {
    if (!['Control', 'Shift', 'Alt'].includes(e.key)) window.keys.push([e.key, e.defaultPrevented]);
  });
  window.addEventListener('wheel', (e) => window.keys.push(['wheel', e.defaultPrevented]));
}"""


def test_a_keyboard_or_a_scanner_in_keyboard_mode_does_nothing_on_the_screen(demo, touch):
    # A USB keyboard plugged into the kiosk reached the browser: F5 reloaded the screen (onto
    # an error page while the daemon restarts), Ctrl+P opened the print preview over it,
    # Ctrl+O a file chooser, Ctrl+plus or Ctrl+wheel zoomed it (a zoom Chromium keeps for the
    # site, across restarts), Alt+Left went back, F12 opened the developer tools. A code
    # reader left in USB keyboard mode types every code it reads, ending with Enter.
    open_kiosk(touch, demo)
    touch.evaluate(KEYS_PREVENTED)
    touch.keyboard.type("KP1.eyJoIjoiQS0xMDEifQ.c2ln")
    touch.keyboard.press("Enter")
    for key in BROWSER_KEYS:
        touch.keyboard.press(key)
    touch.keyboard.down("Control")
    touch.mouse.move(400, 240)
    touch.mouse.wheel(0, -300)
    touch.keyboard.up("Control")
    wait_for(lambda: touch.evaluate("window.keys.length") >= len(BROWSER_KEYS) + 2)
    let_through = [key for key, prevented in touch.evaluate("window.keys") if not prevented]
    assert let_through == []
    assert touch.url == f"{demo.url}/kiosk"


def test_the_language_link_tapped_opens_the_other_language_in_place(demo, touch):
    open_kiosk(touch, demo)
    touch.tap("#k-lang")
    touch.wait_for_url(f"{demo.url}/kiosk?lang=en")
    touch.wait_for_selector("html[lang=en]")
    # The screen is in its own words: no browser offers to translate it.
    assert touch.get_attribute("meta[name=google]", "content") == "notranslate"


def test_the_language_link_tapped_while_the_daemon_is_away_keeps_the_screen(tmp_path, browser):
    # The daemon restarts (an update, a crash) and a visitor taps the other language: the
    # link opened a page that could not load, Chromium's error page, which has none of the
    # screen's reconnecting. The unattended screen stayed on it after the daemon was back,
    # until someone restarted the screen.
    own = KioskDemo(tmp_path).start()
    context = browser.new_context(viewport=SIZE, has_touch=True)
    page = context.new_page()
    try:
        open_kiosk(page, own)
        own.stop()
        page.wait_for_selector("body.offline", timeout=8000)
        page.tap("#k-lang")
        page.wait_for_timeout(1500)  # a navigation would have failed by now
        assert page.url == f"{own.url}/kiosk"
        assert page.evaluate("document.body.classList.contains('offline')")
    finally:
        context.close()


def test_the_language_does_not_revert_onto_an_error_page_while_the_daemon_is_away(
    tmp_path, browser
):
    # A visitor chose English and walked away; a minute later the page goes back to the
    # site's language by loading /kiosk. With the daemon away at that moment the screen
    # was left on Chromium's error page for good.
    own = KioskDemo(tmp_path).start()
    context = browser.new_context(viewport=SIZE, has_touch=True)
    page = context.new_page()
    try:
        page.clock.install()
        open_kiosk(page, own, "?lang=en")
        own.stop()
        page.clock.run_for(5000)
        page.wait_for_selector("body.offline", timeout=8000)
        page.clock.run_for(70_000)  # past the minute a visitor's language lasts
        page.wait_for_timeout(1500)
        assert page.url == f"{own.url}/kiosk?lang=en"
        assert page.evaluate("document.body.classList.contains('offline')")
    finally:
        context.close()


LIVE = """() => {
  const live = (sel) => {
    const region = document.querySelector(sel).closest('[aria-live], [role=status], [role=alert]');
    if (!region) return null;
    return [region.getAttribute('aria-live') || region.getAttribute('role'),
            region.getAttribute('aria-atomic')];
  };
  const out = {};
  for (const sel of ['#k-word', '#k-reasons', '#k-prompt', '#k-temp-value', '#k-hello',
                     '#k-gate-count', '.k-dirs', '#k-clock', '.k-offline .k-prompt']) {
    out[sel] = live(sel);
  }
  return out;
}"""


def test_a_screen_reader_hears_the_result_once_not_the_countdown_every_second(demo, touch):
    # The whole status was one assertive, atomic live region, the gate's countdown ("closes
    # in 3 s") inside it: each second a screen reader read the whole status again from the
    # top, cutting itself off, so a blind resident never heard the end of the result.
    open_kiosk(touch, demo)
    regions = touch.evaluate(LIVE)
    said = ("assertive", "true")
    for sel in ("#k-word", "#k-reasons", "#k-prompt", "#k-temp-value", "#k-hello"):
        assert tuple(regions[sel] or ()) == said, (sel, regions[sel])
    assert regions[".k-offline .k-prompt"] == ["alert", None]
    for sel in ("#k-gate-count", ".k-dirs", "#k-clock"):
        assert regions[sel] is None, (sel, regions[sel])


CONTRAST = """() => {
  const rgba = (s) => {
    const m = s.match(/[\\d.]+/g).map(Number);
    return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1];
  };
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3]));
  const backdrop = (e) => {
    const layers = [];
    for (let n = e; n; n = n.parentElement) {
      const bg = rgba(getComputedStyle(n).backgroundColor);
      if (bg[3] > 0) layers.push(bg);
      if (bg[3] >= 1) break;
    }
    let colour = [255, 255, 255];
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const opacity = (e) => {
    let o = 1;
    for (let n = e; n; n = n.parentElement) o *= Number(getComputedStyle(n).opacity);
    return o;
  };
  const visible = (e) =>
    e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
  const low = [];
  for (const e of document.querySelectorAll('body *')) {
    if (!visible(e) || e.closest('svg') || e.disabled) continue;
    if (![...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const bg = backdrop(e);
    const fg = rgba(getComputedStyle(e).color);
    if (fg[3] === 0) continue;  // a glyph drawn by CSS instead (the pause sign)
    const ink = over([fg[0], fg[1], fg[2], fg[3] * opacity(e)], bg);
    const [a, b] = [lum(ink), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const name = e.id || e.className;
    if (ratio < 4.5) low.push([name, e.textContent.trim().slice(0, 20), ratio.toFixed(2)]);
  }
  return low;
}"""


@pytest.mark.parametrize("size", [(800, 480), (1024, 600)])
def test_every_text_on_the_screen_has_contrast_for_sunlight_in_every_state(demo, browser, size):
    # Elderly residents read it in sunlight: every visible text at least 4.5:1 against what is
    # behind it (WCAG AA), colours as Chromium computes them, in every state.
    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height}, has_touch=True)
    page = context.new_page()
    try:
        open_kiosk(page, demo)
        seen = {"idle": page.evaluate(CONTRAST)}
        for scenario, look in (("ok", "pass"), ("fever", "deny"), ("implausible", "remeasure")):
            # Another household each time: the same pass again soon is denied as a repeat.
            demo.play_step(scenario, 0, household=f"C{width}{look[:2]}", holder="Li")
            page.wait_for_selector(f"body.look-{look}")
            page.wait_for_timeout(400)  # the colour's transition
            seen[look] = page.evaluate(CONTRAST)
            wait_idle(demo)
        demo.play_step("sensor_fault", 0)
        page.wait_for_selector("body.look-fault")
        page.wait_for_timeout(400)
        seen["fault"] = page.evaluate(CONTRAST)
        page.wait_for_selector("body.look-out_of_service")
        page.wait_for_timeout(400)
        seen["out_of_service"] = page.evaluate(CONTRAST)
        demo.play_step("sensor_fault", 1)
        page.wait_for_selector("body.look-idle")
        assert {look: low for look, low in seen.items() if low} == {}
    finally:
        context.close()


def test_a_screen_set_to_reduce_motion_does_not_animate(demo, browser):
    # A screen (or a browser showing it) set to reduce motion still faded its colours and
    # slid the gate's bar down every second.
    context = browser.new_context(viewport=SIZE, reduced_motion="reduce")
    page = context.new_page()
    try:
        open_kiosk(page, demo)
        moving = page.evaluate("""() => [...document.querySelectorAll('*')]
          .map(e => [e.id || e.className, getComputedStyle(e)])
          .filter(([, s]) => s.transitionDuration.split(',').some(d => parseFloat(d) > 0)
                          || s.animationName !== 'none')
          .map(([name]) => String(name))""")
        assert moving == []
    finally:
        context.close()


def watch_status(demo: KioskDemo) -> int:
    try:
        with urllib.request.urlopen(f"{demo.url}/kiosk/watch", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def test_a_crashed_page_is_seen_by_the_daemon_so_the_screen_unit_restarts_it(demo, touch):
    # A renderer crash leaves Chromium running on "Aw, Snap!", where nothing reconnects: the
    # daemon sees the screen's stream end, and /kiosk/watch tells the screen unit's watcher
    # (tests/test_kiosk_screen_watch.py), which restarts the screen.
    open_kiosk(touch, demo)
    wait_for(lambda: watch_status(demo) == 200, 5)
    # chrome://crash is a debug URL: Chromium crashes the page's own renderer with it.
    with contextlib.suppress(Exception):  # the renderer is gone before the load ends
        touch.goto("chrome://crash", timeout=5000)
    wait_for(lambda: watch_status(demo) == 503, 10)


def test_a_screen_left_idle_for_hours_does_not_hold_one_picture_still(demo, browser):
    # The idle screen is the same picture all night: the header, the prompt and the QR
    # picture held still for hours leave their ghost on a cheap LCD panel (image retention),
    # over every result shown in the day. The screen moves all it shows by a few pixels
    # every few minutes, never off the screen.
    context = browser.new_context(viewport=SIZE)
    page = context.new_page()
    try:
        page.clock.install()
        open_kiosk(page, demo)
        spots = set()
        for _ in range(9):
            box = page.locator(".k-site").bounding_box()
            spots.add((round(box["x"]), round(box["y"])))
            page.clock.run_for(5 * 60 * 1000)
            assert page.evaluate(FITS), "moved off the screen"
        xs, ys = {x for x, _ in spots}, {y for _, y in spots}
        assert len(spots) >= 4, spots
        assert max(xs) - min(xs) <= 8 and max(ys) - min(ys) <= 8, spots
    finally:
        context.close()


FITS = """() => [...document.querySelectorAll('.k-top *, .k-main *, .k-offline *')]
  .filter(e => e.getClientRects().length)
  .every(e => { const r = e.getBoundingClientRect();
                return r.left >= -1 && r.top >= -1 && r.right <= innerWidth + 1
                       && r.bottom <= innerHeight + 1; })"""


def watch_answer(demo: KioskDemo) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{demo.url}/kiosk/watch", timeout=5) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_a_page_frozen_with_its_stream_open_is_seen_so_the_screen_unit_restarts_it(
    demo, touch, monkeypatch
):
    # A page stuck in a loop (or a hung renderer) keeps its stream open: the daemon still
    # wrote its ticks into the connection, /kiosk/watch said "listening", and the frozen
    # screen stayed up all day. The page now says it runs, from its own timers; the watch
    # goes stale when it stops. (Beats every 0.5 s, stale after 3 s, to keep this short.)
    from ui import kiosk_screen

    monkeypatch.setattr(kiosk_screen, "BEAT_S", 0.5, raising=False)
    monkeypatch.setattr(kiosk_screen, "BEAT_STALE_S", 3.0, raising=False)
    open_kiosk(touch, demo)
    wait_for(lambda: watch_status(demo) == 200, 5)
    touch.wait_for_timeout(4500)  # longer than the stale time: the page's beats keep it up
    assert watch_status(demo) == 200
    touch.evaluate("setTimeout(() => { for (;;) {} }, 0)")  # the main thread never returns
    wait_for(lambda: watch_status(demo) == 503, 15)
    code, text = watch_answer(demo)
    assert code == 503 and "frozen" in text, text  # its stream still open: it is the page


def test_a_middle_click_or_a_modified_click_on_the_language_link_opens_no_window(demo, touch):
    # A middle click (a mouse plugged in, or a mouse's wheel pressed) on the language link
    # opened the link in a new window, over the kiosk page and outside its reconnecting;
    # Shift or Ctrl with a click did the same. The link works by the page's own click only.
    open_kiosk(touch, demo)
    for button, modifiers in (("middle", []), ("left", ["Shift"]), ("left", ["Control"])):
        touch.click("#k-lang", button=button, modifiers=modifiers, no_wait_after=True)
        touch.wait_for_timeout(500)
        assert len(touch.context.pages) == 1, (button, modifiers)
        if button == "left":  # the page's own click: the other language, in this window
            wait_for(lambda: "lang=en" in touch.url, 5)
            open_kiosk(touch, demo)
    assert touch.url == f"{demo.url}/kiosk"


def test_a_clock_stepped_back_does_not_blind_the_screen_to_a_silent_daemon(demo, browser):
    # The Pi has no clock of its own through a power cut: NTP sets it after the boot, and a
    # clock that was ahead (a hand-set time, a drifting RTC) steps back. The page timed its
    # silences on that wall clock: after a step back of an hour, a daemon gone silent was not
    # seen for the hour, and the screen kept showing its last result as if live (a deny's
    # minimum hold lasted the hour too). It times them on the page's monotonic clock.
    context = browser.new_context(viewport=SIZE)
    page = context.new_page()
    try:
        page.clock.install()
        open_kiosk(page, demo)
        now_s = page.evaluate("Date.now()") / 1000
        page.clock.set_system_time(now_s - 3600)  # NTP steps the wall clock back an hour
        # A minute of the page's time with nothing from the daemon (its ticks come in real
        # time, milliseconds of it here): the offline screen, as without the step.
        page.clock.run_for(60_000)
        assert page.evaluate("window.kioskOfflineAt !== undefined")
    finally:
        context.close()


def test_after_a_storm_of_daemon_restarts_the_screen_is_watched_again_once(tmp_path, browser):
    # The daemon restarted three times in a row (an update going back, a crash loop): each
    # new daemon knows no screen until the page's stream comes back, and the page's beats
    # before that are refused. The page must name itself again on every new stream, or the
    # watcher would restart a screen that is fine, and one page must count once.
    first = KioskDemo(tmp_path / "d0")
    first.start()
    context = browser.new_context(viewport=SIZE)
    page = context.new_page()
    daemons = [first]
    try:
        open_kiosk(page, first)
        wait_for(lambda: watch_status(first) == 200, 5)
        for n in range(1, 4):
            daemons[-1].stop()
            again = KioskDemo(tmp_path / f"d{n}")
            again.port = first.port  # the same address, as systemd restarts it
            again.start()
            daemons.append(again)
        last = daemons[-1]
        wait_for(lambda: watch_status(last) == 200, 20)
        page.wait_for_selector("body:not(.offline)")
        assert watch_answer(last) == (200, "listening\n")
        app = last.session.daemon._server.config.app  # the web app the daemon serves...
        while not hasattr(app, "state"):
            app = app.app  # ...inside the server's own layers
        screen_ids = {w.screen_id for w in app.state.screen.beats.streams}
        assert len(screen_ids) == 1, screen_ids  # one page, however often it reconnected
    finally:
        context.close()
        daemons[-1].stop()
