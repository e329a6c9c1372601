"""A guard console page left open when the kiosk restarts into standby (a card failing
mid-shift, then a reboot) turns into the standby page, in Debian's Chromium."""

from __future__ import annotations

import pytest
from guard_support import GUARD_PW
from test_export_cut import serving

from kiosk.standby import Standby
from ui.app import create_app
from ui.standby import create_standby_app

pytestmark = pytest.mark.browser


def test_an_open_console_turns_into_the_standby_page_when_the_kiosk_stands_by(browser, guard_core):
    """The live page's stream was cut when the daemon restarted; its retries got the standby
    server's 503 and kept retrying every 3 s for ever, the page frozen on its last feed (the
    gate looking ready) and nothing telling the guard the kiosk decides nothing and what to
    do. It asks its feed, sees the kiosk stands by and reloads into the page that says so."""
    context = browser.new_context()
    try:
        page = context.new_page()
        with serving(create_app(guard_core)) as port:
            page.goto(f"http://127.0.0.1:{port}/guard/login?lang=en")
            page.fill("input[name=name]", "alice")
            page.fill("input[name=password]", GUARD_PW)
            page.click("button[type=submit]")
            page.wait_for_url("**/guard*")
            assert page.locator("#feed").count() == 1  # the live page, its stream open
        standby = Standby("store_fault: the file system is read-only", "read_only", "now")
        with serving(create_standby_app(standby, "gate-1"), port):
            page.wait_for_selector("text=paper register", timeout=20000)
            assert "sudo reboot" in page.content()
    finally:
        context.close()
