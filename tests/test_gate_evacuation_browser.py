"""The kiosk screen during an evacuation, in headless Chromium at 800x480 against the demo
daemon: green, legible, telling everyone to go through without stopping, nothing inviting a
scan or a wrist; back to its idle screen when the guard ends it."""

from __future__ import annotations

import re

import pytest
import test_browser_kiosk as kiosk_tests
from test_browser import wait_for
from test_browser_kiosk import check_legible, look, open_kiosk

#: The kiosk screen tests' fixtures: the demo daemon, an 800x480 page, the screenshots folder.
demo, page, shots = kiosk_tests.demo, kiosk_tests.page, kiosk_tests.shots

pytestmark = pytest.mark.browser


def test_the_guards_console_shows_it_as_it_starts_and_ends(demo, browser):
    """The live page's "current" panel follows the stream: an evacuation started elsewhere
    (the Devices page, another tablet) shows there at once, and goes when it ends."""
    runner = demo.session.core.runner
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    console = context.new_page()
    try:
        console.goto(f"{demo.url}/guard?lang=en")
        console.fill("input[name=name]", demo.session.guard_user)
        console.fill("input[name=password]", demo.session.guard_password)
        console.click("button[type=submit]")
        console.wait_for_url(re.compile(r".*/guard\?lang=en$|.*/guard$"))
        runner.manual_threadsafe(
            timeout_s=5.0,
            decision="manual_pass",
            operator="zhou",
            reason="a resident collapsed",
            direction="in",
            subject="none",
            evacuate=("medical", 5),
        )
        wait_for(lambda: console.inner_text("#now-text").startswith("EVACUATION"), 10)
        assert "pass" in console.get_attribute("#now", "class")
        runner.in_loop(runner.engine.end_evacuation)
        wait_for(lambda: "EVACUATION" not in console.inner_text("#now-text"), 10)
    finally:
        context.close()


def test_the_kiosk_screen_during_an_evacuation(demo, page, shots):
    runner = demo.session.core.runner
    open_kiosk(page, demo)
    look(page, demo, "idle", shots)
    runner.manual_threadsafe(
        timeout_s=5.0,
        decision="manual_pass",
        operator="zhou",
        reason="smoke in block 3",
        direction="out",
        subject="none",
        evacuate=("fire", 5),
    )
    look(page, demo, "pass", shots, "kiosk-evacuation-zh.png")
    assert page.inner_text("#k-word") == "紧急疏散"
    assert "请直接通过" in page.inner_text("#k-prompt")
    assert not page.is_visible(".k-side") and not page.is_visible("#k-wrist")
    check_legible(page, "evacuation")
    runner.in_loop(runner.engine.end_evacuation)
    wait_for(lambda: "紧急疏散" not in page.inner_text("body"), 10)
    look(page, demo, "idle", shots)
