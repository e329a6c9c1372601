"""The kiosk screen during an evacuation, in headless Chromium at 800x480 against the demo
daemon: green, legible, telling everyone to go through without stopping, nothing inviting a
scan or a wrist; back to its idle screen when the guard ends it."""

from __future__ import annotations

import pytest
import test_browser_kiosk as kiosk_tests
from test_browser import wait_for
from test_browser_kiosk import check_legible, look, open_kiosk

#: The kiosk screen tests' fixtures: the demo daemon, an 800x480 page, the screenshots folder.
demo, page, shots = kiosk_tests.demo, kiosk_tests.page, kiosk_tests.shots

pytestmark = pytest.mark.browser


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
