"""The offline screen at night, in headless Chromium against the daemon on fakes: the page
draws it itself when the daemon is unreachable, with the words the last view handed it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_browser_kiosk import KioskDemo, check_legible, serving
from test_kiosk_screen_resident_browser import open_scripted, say_view, scripted
from test_ui_kiosk import DECIDED, deny_for

from ui import i18n
from ui.views import kiosk_view

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CALL = "duty office 0755-1234567"
#: A number only: legible on either screen (no English on a Chinese one).
NUMBER = "0755-1234567"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[KioskDemo]:
    yield from serving(KioskDemo(tmp_path_factory.mktemp("kiosk-night")))


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_offline_screen_at_night_says_where_to_call(demo, browser, lang):
    # The daemon went away at 23:00 with a device fault on the screen: the offline screen
    # said "please wait or see the guard" to a gate nobody staffs at night.
    context = scripted(browser)
    page = context.new_page()
    try:
        open_scripted(page, demo, f"?lang={lang}")
        decision = deny_for("sensor_fault", temp_c=None)
        night = kiosk_view(DECIDED, decision, lang, call=CALL, on_duty=False)
        say_view(page, night | {"result_id": "r1"})
        page.evaluate("kioskBreak()")
        page.wait_for_selector("body.offline")
        said = page.inner_text(".k-offline .k-prompt")
        assert said == night["offline_next"] and i18n.call_line(lang, CALL) in said
        assert "保安处" not in said and "see the guard" not in said
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_night_forms_are_legible_at_800x480(demo, browser, lang):
    # The longest night forms: the kiosk stopping with its gate released, out of service,
    # and the offline screen over it.
    context = scripted(browser)
    page = context.new_page()
    try:
        open_scripted(page, demo, f"?lang={lang}")
        stopping = {"type": "state", "state": "idle", "prompt": "stopping"}
        view = kiosk_view(stopping, None, lang, call=NUMBER, stop_releases=True, on_duty=False)
        page.evaluate("(v) => kioskSay('view', v)", view)
        page.wait_for_selector("body.look-out_of_service")
        assert page.inner_text("#k-prompt") == view["prompt"] and NUMBER in view["prompt"]
        check_legible(page, "stopping at night", chinese=lang == "zh-CN")
        page.evaluate("kioskBreak()")
        page.wait_for_selector("body.offline")
        page.wait_for_timeout(400)  # the background's transition
        check_legible(page, "offline at night", chinese=lang == "zh-CN")
    finally:
        context.close()
