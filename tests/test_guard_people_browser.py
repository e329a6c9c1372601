"""A resident's request at the console in headless Chromium on a 360×740 phone, against a
real web server on the real core: the admin finds the resident, downloads the JSON (the
CLI's), previews the forget, is refused for what is in force, ticks force and forgets, and
reads the office's ``kiosk fleet forget`` line; by keyboard alone, nothing wider than the
screen, in both languages. A guard is shown no link."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from guard_support import ADMIN_PW, GUARD_PW, add_event
from test_browser_community import serve
from test_csp_browser import LISTEN

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
NAME = "Marlowe Qiuxiang"
HOUSEHOLD = "7-1404"
PASS = "feedfacecafe"
ROOM = "/guard/community/people"
OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
def site(tmp_path, monkeypatch):
    yield from serve(tmp_path, monkeypatch)


def on_phone(browser, url: str, name: str, password: str, lang: str):
    context = browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, accept_downloads=True
    )
    context.add_init_script(LISTEN)  # what the page's CSP refused (fits asks)
    page = context.new_page()
    page.goto(f"{url}/guard/community?lang={lang}")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector(".c-nav")
    return page


def fits(page) -> None:
    """Nothing scrolls sideways, every control of the room is inside the screen's width, and
    the page's Content-Security-Policy refused nothing (its inline style has the nonce)."""
    assert page.evaluate("() => window.__refused") == []
    assert page.evaluate(OVERFLOW) <= 0
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('main input, main button, main a, main code')]
            .filter(e => e.offsetParent !== null).map(e => {
                const r = e.getBoundingClientRect();
                return [e.id || e.name, r.left, r.right];
            })"""
    )
    for what, left, right in boxes:
        assert left >= -0.5 and right <= PHONE["width"] + 0.5, (what, left, right)


def tab_to(page, selector: str, most: int = 60) -> None:
    """Press Tab until ``selector`` has the focus (keyboard only)."""
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} not reached by Tab")


def test_a_guard_is_shown_no_link_to_the_room(site, browser):
    _core, url = site
    page = on_phone(browser, url, "alice", GUARD_PW, "en")
    assert page.locator(f".c-nav a[href='{ROOM}']").count() == 0
    assert page.goto(f"{url}{ROOM}").status == 403
    page.context.close()


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_show_download_preview_and_forget_on_a_phone_by_keyboard(site, browser, lang, tmp_path):
    core, url = site
    add_event(core, holder=NAME, household=HOUSEHOLD, pass_id=PASS)
    add_event(core, holder=NAME, household=HOUSEHOLD, pass_id=PASS, direction="out")
    core.lists.add_quarantine(HOUSEHOLD, NAME, date(2026, 2, 10), date(2026, 2, 20), "root")
    page = on_phone(browser, url, "root", ADMIN_PW, lang)
    page.locator(f".c-nav a[href='{ROOM}']").click()
    page.wait_for_selector("#people-form")
    fits(page)

    # Show: the keys typed, the form sent by the keyboard.
    page.locator("#key-name").focus()
    page.keyboard.type(NAME)
    tab_to(page, "#key-phone")  # Tab goes through the fields in order
    page.locator("#key-household").focus()
    page.keyboard.type(HOUSEHOLD)
    tab_to(page, "#people-show")
    page.keyboard.press("Enter")
    page.wait_for_selector("#people-found")
    assert page.locator(".p-row[data-store='events']").count() == 2
    assert page.locator(".p-row[data-store='list_quarantine']").count() == 1
    assert PASS in page.locator("#people-passes").inner_text()
    assert ROOM in page.url and NAME not in page.url and HOUSEHOLD not in page.url
    fits(page)

    # The resident's copy: the CLI's JSON, a download.
    tab_to(page, "#people-download")
    with page.expect_download() as got:
        page.keyboard.press("Enter")
    saved = Path(tmp_path / "copy.json")
    got.value.save_as(saved)
    copy = json.loads(saved.read_text(encoding="utf-8"))
    assert copy["keys"] == ["household", "name"] and copy["counts"]["events"] == 2
    assert [a["action"] for a in core.store.audits()[-2:]] == ["person_shown"] * 2

    # The preview: nothing done yet, the quarantine in force named.
    tab_to(page, "#people-forget")
    page.keyboard.press("Enter")
    page.wait_for_selector("#people-dry")
    assert page.locator("#dry-table tr[data-store='events']").count() == 1
    assert page.locator("#people-in-force").count() == 1
    assert core.store.events(0, 2)[0]["holder"] == NAME  # nothing forgotten
    fits(page)

    # Confirmed without force: refused, the preview again; with force: forgotten.
    tab_to(page, "#forget-yes")
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash.err")
    assert core.store.events(0, 2)[0]["holder"] == NAME
    tab_to(page, "#people-force")
    page.keyboard.press("Space")
    assert page.locator("#people-force").is_checked()
    tab_to(page, "#forget-yes")
    page.keyboard.press("Enter")
    page.wait_for_selector("#people-done")
    fleet = page.locator("#people-fleet").inner_text()
    assert fleet == f"kiosk fleet forget --kiosk {core.store.kiosk_id} --seqs 1-2"
    assert [e["holder"] for e in core.store.events(0, 2)] == [None, None]
    assert PASS in core.lists.current.revoked
    fits(page)
    page.context.close()
