"""Defects found working a shift at the gate in a real browser (headless Chromium, the real
daemon on fakes), each pinned where only a browser shows it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_browser import wait_for, wait_idle
from test_browser_kiosk import SIZE, KioskDemo, open_kiosk, serving

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[KioskDemo]:
    yield from serving(KioskDemo(tmp_path_factory.mktemp("shift")))


@pytest.mark.parametrize("path", ["/kiosk", "/guard/login"])
def test_a_screen_opens_without_an_error_in_the_browsers_console(demo, browser, path):
    # Every first page a browser opened logged "Failed to load resource: 404": it asked for
    # /favicon.ico, which nothing serves; the pages now name their (empty) icon.
    context = browser.new_context(viewport=SIZE)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{demo.url}{path}")
        page.wait_for_load_state("load")
        wait_for(lambda: page.evaluate("document.readyState") == "complete")
        page.wait_for_timeout(1000)  # the icon is asked for after the page's load
        assert errors == []
    finally:
        context.close()


#: What sticks out past the screen's right edge (the kiosk never scrolls: it is cut off).
CUT_OFF = """() => [...document.querySelectorAll('body *')].filter(e => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.right > innerWidth + 1 && getComputedStyle(e).visibility !== 'hidden';
}).map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').trim().slice(0, 20))"""


@pytest.mark.parametrize("size", [(480, 800), (390, 844)])
def test_a_portrait_kiosk_screen_shows_every_word_within_its_width(demo, browser, size):
    # On a portrait panel (480x800) the sizes followed the tall height: "禁止通行" was cut to
    # "禁止通" and the what-to-do line ran off the edge, as did the sound and language buttons.
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    try:
        open_kiosk(page, demo)
        assert page.evaluate(CUT_OFF) == []
        if not demo.session.core.lists.current.quarantine:  # the demo is the module's
            demo.play_step("quarantined", 0)  # the household goes into quarantine (once: a
            # second entry of the same days is refused, one quarantine one entry)
        for scenario, step in (("fever", 0), ("quarantined", 1)):  # the longest prompts
            demo.play_step(scenario, step)
            page.wait_for_selector("body.look-deny")
            assert page.evaluate(CUT_OFF) == [], scenario
            prompt = "parseFloat(getComputedStyle(document.querySelector('#k-prompt')).fontSize)"
            assert page.evaluate(prompt) >= 32  # the what-to-do line stays legible
            wait_idle(demo)
    finally:
        context.close()
