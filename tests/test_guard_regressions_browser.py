"""Console pages on a phone (390 px) with real-looking data, in headless Chromium against a
real web server on the real core (the ``site`` of the community pages' browser tests)."""

from __future__ import annotations

import pytest
from test_browser_community import sign_in_at, site  # noqa: F401  (site: the fixture)

pytestmark = pytest.mark.browser


def test_on_a_phone_the_lists_fit_and_an_entry_can_be_removed(site, browser):  # noqa: F811
    core, url = site
    core.lists.add_quarantine(
        "3-1-701", "欧阳王芳芳芳", "2026-02-10", "2026-02-24", "root", note="密接，社区通知"
    )
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in_at(page, f"{url}/guard/lists", "#quarantine")
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 390, width
        remove = page.locator("#quarantine form[action$=remove] button")
        box = remove.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        remove.click()
        page.wait_for_selector("#confirm-step")
    finally:
        context.close()


def test_the_plate_check_at_a_vehicle_registration_never_puts_the_plate_in_a_url(
    site,  # noqa: F811
    browser,  # noqa: F811
):
    """The form asks whose car a plate is by a POST (with the CSRF token): the plate is in
    no request URL (browser history, a proxy's access log), and the answer still shows."""
    from urllib.parse import unquote

    core, url = site
    cars = core.ledgers.vehicles
    cars.apply(cars.plan_import("plate,household\n京A12345,3-402\n".encode(), "c.csv"), "root")
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(unquote(request.url)))
    try:
        sign_in_at(page, f"{url}/guard/register?lang=en", "#vehicle-form")
        page.fill("#vehicle-form input[name=plate]", "京A12345")
        page.press("#vehicle-form input[name=plate]", "Tab")
        page.wait_for_selector("#plate-check.known")
        assert "3-402" in page.inner_text("#plate-check")
        page.fill("#vehicle-form input[name=plate]", "沪B99999")
        page.press("#vehicle-form input[name=plate]", "Tab")
        page.wait_for_selector("#plate-check.unknown")
        assert not [u for u in urls if "12345" in u or "99999" in u]
        assert any(u.endswith("/guard/community/plate") for u in urls)
    finally:
        context.close()
