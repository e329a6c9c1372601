"""Console pages on a phone (390 px) with real-looking data, in headless Chromium against a
real web server on the real core (the ``site`` of the community pages' browser tests)."""

from __future__ import annotations

import pytest
from guard_support import GUARD_PW
from test_browser_community import site  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser


def test_on_a_phone_the_lists_fit_and_an_entry_can_be_removed(site, browser):  # noqa: F811
    core, url = site
    core.lists.add_quarantine(
        "3-1-701", "欧阳王芳芳芳", "2026-02-10", "2026-02-24", "root", note="密接，社区通知"
    )
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(f"{url}/guard/lists")
        page.fill("input[name=name]", "alice")
        page.fill("input[name=password]", GUARD_PW)
        page.click("button[type=submit]")
        page.wait_for_selector("#quarantine")
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 390, width
        remove = page.locator("#quarantine form[action$=remove] button")
        box = remove.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        remove.click()
        page.wait_for_selector("#confirm-step")
    finally:
        context.close()
