"""Defects found walking a guard's shift in Chromium against the real daemon on fakes (issue
17): each test names what the guard saw."""

from __future__ import annotations

import pytest
from test_browser import DemoThread
from test_guard_screens_browser import signed_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = DemoThread(tmp_path_factory.mktemp("guard-walk")).start()
    yield d
    d.stop()


def test_a_refused_manual_decision_keeps_what_the_guard_typed(demo, browser):
    """A manual pass refused (here: a person without a pass with a fever) comes back with the
    problem and the reason, hand temperature and direction as typed; whom it is about is
    chosen again, explicitly, as always."""
    page = signed_in(browser, demo, "/guard?lang=zh-CN", width=390, height=844)
    before = demo.session.core.store.last_seq
    page.check("#subject-none")
    page.fill("#manual-form input[name=reason]", "老人没有手机，住 3-402")
    page.fill("#manual-form input[name=temp_c]", "38.0")
    page.select_option("#manual-form select[name=direction]", "out")
    page.click("#manual-form button[value=pass]")
    page.click("#manual-confirm-yes")
    page.wait_for_selector(".flash.err")
    assert "38.0 °C" in page.inner_text(".flash.err")
    assert page.input_value("#manual-form input[name=reason]") == "老人没有手机，住 3-402"
    assert page.input_value("#manual-form input[name=temp_c]") == "38.0"
    assert page.input_value("#manual-form select[name=direction]") == "out"
    assert not page.is_checked("#subject-none")
    assert demo.session.core.store.last_seq == before
    # kept once: the next page starts empty
    page.goto(f"{demo.url}/guard/stats")
    page.goto(f"{demo.url}/guard")
    assert page.input_value("#manual-form input[name=reason]") == ""
    page.context.close()


def test_a_decision_recorded_leaves_the_form_empty_for_the_next_person(demo, browser):
    """After a manual decision is recorded the form is empty: the next person is never
    recorded with the last one's reason, hand temperature or direction (the live page
    always holds hidden error banners: a refusal is the server's own mark, not one of
    them), and signing out asks nothing (nothing is left unsent)."""
    page = signed_in(browser, demo, "/guard?lang=en", width=1280, height=800)
    before = demo.session.core.store.last_seq
    page.check("#subject-none")
    page.fill("#manual-form input[name=reason]", "re-measured by hand, normal")
    page.fill("#manual-form input[name=temp_c]", "36.9")
    page.select_option("#manual-form select[name=direction]", "out")
    page.click("#manual-form button[value=pass]")
    page.click("#manual-confirm-yes")
    page.wait_for_selector(".flash.ok")
    assert demo.session.core.store.last_seq == before + 1
    assert page.input_value("#manual-form input[name=reason]") == ""
    assert page.input_value("#manual-form input[name=temp_c]") == ""
    assert page.input_value("#manual-form select[name=direction]") == ""
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.type), d.accept()))
    page.click("form[action='/guard/logout'] button")
    page.wait_for_url("**/guard/login**")
    assert dialogs == []
    page.context.close()
