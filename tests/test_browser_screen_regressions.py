"""Kiosk screen regressions (defects found in the field review), in headless Chromium
(tests/test_browser.py's browser) against the real daemon on fakes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_browser import wait_for
from test_browser_kiosk import SIZE, KioskDemo, serving

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[KioskDemo]:
    yield from serving(KioskDemo(tmp_path_factory.mktemp("kiosk-screen-regressions")))


@pytest.mark.parametrize("status", [503, 429, 500])
def test_the_screen_comes_back_after_its_stream_was_refused_once(demo, browser, status):
    context = browser.new_context(viewport=SIZE)
    page = context.new_page()
    answered: list[int] = []

    def once_refused(route: Any) -> None:
        # One refusal (a restarting proxy, a 5xx, a lockout): the browser's EventSource then
        # closes for good, and the unattended screen stayed "offline" until someone reloaded.
        if not answered:
            answered.append(status)
            route.fulfill(status=status, body="try again later")
        else:
            answered.append(200)
            route.continue_()

    try:
        page.route("**/kiosk/events*", once_refused)
        page.goto(f"{demo.url}/kiosk")
        # Route handlers run only while Playwright is called: wait through it.
        wait_for(lambda: page.wait_for_timeout(50) or answered, 10)
        try:
            wait_for(lambda: page.wait_for_timeout(50) or 200 in answered, 15)  # asked again
        except AssertionError:
            raise AssertionError(f"the stream was never asked for again: {answered}") from None
        assert answered[0] == status
        wait_for(lambda: page.evaluate("window.kioskView !== undefined"), 15)
        wait_for(lambda: not page.evaluate("document.body.classList.contains('offline')"), 10)
    finally:
        context.close()
