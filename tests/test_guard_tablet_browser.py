"""The guard's screen as a guard at the gate uses it, gloves on, on a 7" touch tablet
(1024×600), in Chromium against the real daemon on fakes: the lists, passes and confirmation
pages a guard edits entries on, every target a finger, every field named, the keyboard
alone, and a refused entry kept as typed."""

from __future__ import annotations

from typing import Any

import a11y_support as a11y
import pytest
from test_browser import (  # noqa: F401 (shots_folder: autouse)
    DemoThread,
    shots_folder,
    wait_for,
)
from test_guard_screens_browser import signed_in

pytestmark = pytest.mark.browser

TABLET = {"width": 1024, "height": 600}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = DemoThread(tmp_path_factory.mktemp("guard-tablet")).start()
    core = d.session.core
    today = core.clock.now().date()
    core.lists.add_quarantine("5-202", "孙丽", str(today), str(today), "root")
    core.lists.set_household("9-909", "root", residents=3)
    core.lists.revoke("0123456789ab", "lost", "root")
    yield d
    d.stop()


def tablet(browser, demo, path: str) -> Any:
    return signed_in(browser, demo, path, **TABLET, is_mobile=True, has_touch=True)


def leaving_asks(page: Any) -> bool:
    """Whether leaving the page (the navigation's live entry) asks first; the guard stays."""
    seen: list[str] = []

    def answer(dialog: Any) -> None:
        seen.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", answer)
    page.click(".g-nav a[href='/guard']", no_wait_after=True)
    page.wait_for_timeout(300)  # the dialog comes from the navigation, not from the click
    page.remove_listener("dialog", answer)
    return seen == ["beforeunload"]


def test_a_refused_quarantine_entry_typed_by_keyboard_comes_back_as_typed(demo, browser):
    """At the gate on the tablet, a quarantine entry typed field by field with the keyboard
    (Tab between fields, Enter sends it) and refused (it ends before it starts) came back
    as an empty form: household, holder, dates and note to type again. It comes back as typed,
    the problem said above it (an alert), and leaving it asks first, like any form typed."""
    page = tablet(browser, demo, "/guard/lists?lang=en")
    page.focus("#quarantine-form input[name=household]")
    page.keyboard.type("3-201")
    page.keyboard.press("Tab")
    page.keyboard.type("王秀英")
    page.keyboard.press("Tab")
    page.fill("#quarantine-form input[name=from]", "2026-03-10")  # a date picker's value
    page.fill("#quarantine-form input[name=until]", "2026-03-01")
    page.focus("#quarantine-form input[name=note]")
    page.keyboard.type("back from abroad")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator(".flash.err[role=alert]").is_visible()
    typed = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#quarantine-form input')]
            .filter(i => i.type !== 'hidden').map(i => [i.name, i.value]))"""
    )
    assert typed == {"household": "3-201", "holder": "王秀英", "from": "2026-03-10",
                     "until": "2026-03-01", "note": "back from abroad"}  # fmt: skip
    assert (
        page.evaluate("document.querySelector('#households-form input[name=household]').value")
        == ""
    )
    assert leaving_asks(page)
    page.fill("#quarantine-form input[name=until]", "2026-03-20")
    with page.expect_navigation():
        page.click("#quarantine-form button[type=submit]")
    assert page.locator(".flash.ok").is_visible()
    assert "3-201" in page.locator("#quarantine tbody").inner_text()
    page.context.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_list_and_pass_pages_and_their_confirmation_take_a_gloved_finger(demo, browser, lang):
    """The 7" tablet's walk (test_guard_phone_browser) covers the live page, registration and
    returnees: the pages where entries are added and removed (each list's rows with their
    remove buttons, the passes with their void and reprint) and the confirmation step of a
    destructive action are hit with gloves too: every target 44×44 CSS px, every field and
    button named for a screen reader."""
    page = tablet(browser, demo, f"/guard/passes?lang={lang}")
    page.fill("#pass-form input[name=household]", "3-402")
    page.fill("#pass-form input[name=holder]", "王秀英")
    page.click("#pass-form button[type=submit]")
    page.wait_for_selector("#passes tbody tr[data-pass]")
    found = {"/guard/passes": a11y.small_targets(page) + a11y.unnamed_controls(page)}
    page.goto(demo.url + "/guard/lists")
    found["/guard/lists"] = a11y.small_targets(page) + a11y.unnamed_controls(page)
    page.locator("#quarantine tbody button[type=submit]").first.click()
    page.wait_for_selector("#confirm-step")
    found["confirm step"] = a11y.small_targets(page) + a11y.unnamed_controls(page)
    page.context.close()
    assert {path: each for path, each in found.items() if each} == {}


def test_the_confirmation_step_is_worked_by_keyboard_and_escape_backs_out(demo, browser):
    """A guard with a keyboard asks to end a quarantine (the row's Remove, Enter): the
    confirmation page opened with the focus nowhere, so Tab went through the header and both
    navigations first, and Escape, which closes the manual pass's confirmation, did nothing.
    The focus is on the question (a screen reader says it), the next Tab is the step's own
    first control, and Escape backs out as "No" does: nothing changed."""
    core = demo.session.core
    before = len(core.lists.current.quarantine)
    page = tablet(browser, demo, "/guard/lists?lang=en")
    page.focus("#quarantine tbody button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_selector("#confirm-step")
    assert page.evaluate("document.activeElement.id") == "confirm-text"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "confirm-yes"
    with page.expect_navigation():
        page.keyboard.press("Escape")
    assert page.url.endswith("/guard/lists")
    assert len(core.lists.current.quarantine) == before
    # typing a reason with a Chinese input method: its Escape ends the composition only
    page.goto(demo.url + "/guard/passes")
    page.fill("#pass-form input[name=household]", "3-402")
    page.fill("#pass-form input[name=holder]", "王秀英")
    page.click("#pass-form button[type=submit]")
    page.wait_for_selector("#passes tbody tr[data-pass]")
    page.locator("#passes button.revoke").first.click()
    page.wait_for_selector("#confirm-step")
    assert page.evaluate("document.activeElement.id") == "confirm-text"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "note"  # the reason comes first
    page.evaluate(
        """() => document.activeElement.dispatchEvent(new KeyboardEvent('keydown',
            {key: 'Escape', isComposing: true, bubbles: true}))"""
    )
    page.wait_for_timeout(300)
    assert page.locator("#confirm-step").is_visible()
    page.context.close()
