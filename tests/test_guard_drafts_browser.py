"""Half-typed input on the guard console in Chromium against the real daemon on fakes: the
header's language link and sign-out (and any other way off the page) ask before a form's
unsent input is lost, say nothing when there is none or the form is being sent, and keep
nothing of it in the browser's storage (docs/privacy.md)."""

from __future__ import annotations

from typing import Any

import pytest
from test_browser import DemoThread, shots_folder  # noqa: F401 (shots_folder: autouse)
from test_guard_screens_browser import signed_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = DemoThread(tmp_path_factory.mktemp("guard-drafts")).start()
    yield d
    d.stop()


def leaving(page: Any, act: Any, *, accept: bool) -> list[str]:
    """The dialogs ``act`` raised (each answered: leave if ``accept``, else stay)."""
    seen: list[str] = []

    def answer(dialog: Any) -> None:
        seen.append(dialog.type)
        if accept:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    act()
    page.wait_for_timeout(300)  # the dialog comes from the navigation, not from act's return
    page.remove_listener("dialog", answer)
    return seen


def storage(page: Any) -> str:
    return page.evaluate(
        "() => JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage)])"
    )


def test_the_language_link_asks_before_a_half_typed_registration_is_lost(demo, browser):
    page = signed_in(browser, demo, "/guard/register?lang=zh-CN")
    page.fill("#person-form input[name=name]", "王秀英")
    page.fill("#person-form input[name=id_number]", "110101199003071234")
    language = page.locator(".g-user a[lang=en]")
    assert leaving(page, language.click, accept=False) == ["beforeunload"]
    assert page.url.endswith("/guard/register?lang=zh-CN")  # stayed, the draft as typed
    assert page.input_value("#person-form input[name=name]") == "王秀英"
    assert page.input_value("#person-form input[name=id_number]") == "110101199003071234"
    assert "王秀英" not in storage(page) and "1101011990" not in storage(page)
    # Sign-out asks too; leaving on purpose leaves.
    logout = page.locator(".g-user form button[type=submit]")
    assert leaving(page, logout.click, accept=True) == ["beforeunload"]
    page.wait_for_url("**/guard/login**")
    page.context.close()


def test_a_clean_form_or_one_being_sent_is_not_asked_about(demo, browser):
    page = signed_in(browser, demo, "/guard/register?lang=zh-CN")
    page.click("#person-form input[name=name]")  # touched, nothing typed
    assert leaving(page, page.locator(".g-user a[lang=en]").click, accept=False) == []
    page.wait_for_url("**/guard/register?lang=en")
    page.fill("#person-form input[name=name]", "Wang Xiuying")
    page.fill("#person-form input[name=unit]", "3-402")
    page.fill("#person-form input[name=reason]", "visit")
    page.fill("#person-form input[name=temp_c]", "36.6")
    sent = leaving(page, page.locator("#person-form button[type=submit]").click, accept=False)
    assert sent == []
    page.wait_for_selector(".flash.ok")
    page.context.close()


def test_a_registration_the_server_put_back_after_a_refusal_is_asked_about(demo, browser):
    page = signed_in(browser, demo, "/guard/register?lang=en")
    page.fill("#person-form input[name=name]", "Li Lei")
    page.fill("#person-form input[name=unit]", "3-402")
    page.fill("#person-form input[name=reason]", "visit")
    page.fill("#person-form input[name=temp_c]", "38.6")  # a fever: refused, kept as typed
    page.click("#person-form button[type=submit]")
    page.wait_for_selector(".flash.err")
    assert page.input_value("#person-form input[name=name]") == "Li Lei"
    assert leaving(page, page.locator(".g-nav a[href='/guard']").click, accept=False) == [
        "beforeunload"
    ]
    assert page.input_value("#person-form input[name=name]") == "Li Lei"
    page.context.close()


def test_a_half_typed_manual_pass_reason_is_asked_about(demo, browser):
    page = signed_in(browser, demo, "/guard?lang=en")
    page.fill("#manual-form input[name=reason]", "delivery, known driver")
    language = page.locator(".g-user a[lang=zh-CN]")
    assert leaving(page, language.click, accept=False) == ["beforeunload"]
    assert page.input_value("#manual-form input[name=reason]") == "delivery, known driver"
    page.context.close()
