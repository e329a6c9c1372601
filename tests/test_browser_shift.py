"""Defects found working a shift at the gate in a real browser (headless Chromium, the real
daemon on fakes), each pinned where only a browser shows it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_browser import wait_for
from test_browser_kiosk import SIZE, KioskDemo, serving

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
