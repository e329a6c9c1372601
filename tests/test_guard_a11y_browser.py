"""The guard console as people with different abilities use it, in Chromium against the real
daemon on fakes: a screen reader (names, title, language, headings, landmarks), a keyboard
only (every stop reached by Tab shows a ring one can see), low vision in sunlight (contrast of
every text on every page, in both languages; zoom to 200 % and a 320 px screen without the
page scrolling sideways), gloves on a phone (44 px targets), motion sensitivity (no animation
when the system asks for reduced motion), and the live page's updates (announced, the guard's
place kept).

The pages are found by following the console's own links from the live page (every entry of
both navigations, a passage the alarms link to), so a page added later is walked too."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import a11y_support as a11y
import pytest
from test_browser import (  # noqa: F401 (shots_folder: autouse)
    DemoThread,
    shots_folder,
    wait_for,
    wait_idle,
)
from test_guard_screens_browser import signed_in

pytestmark = pytest.mark.browser

#: Links that are not console pages (downloads, signing out, the other language).
NOT_A_PAGE = re.compile(r"\.(csv|xlsx|pdf|json)\b|/logout|/login|[?&]lang=|/api/|/events")
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = DemoThread(tmp_path_factory.mktemp("guard-a11y")).start()
    for scenario in ("ok", "fever", "forged"):  # a feed, alarms of two kinds, passages
        d.play(scenario)
        wait_idle(d)
    yield d
    d.stop()


#: The compound's map a manager imports: three homes, one of them quarantined below.
MAP = "building,unit,floor,household\n3,1,7,3-1-701\n3,1,7,3-1-702\n3,1,1,3-1-101\n"


def import_the_map(demo, browser, folder) -> None:
    """A manager imports the compound's map and a home goes into quarantine, so the map's
    homes carry their statuses."""
    from kiosk.accounts import hash_password

    core = demo.session.core
    core.accounts.add("wu", "admin", hash_password("office-admin-pw"), "test")
    page = browser.new_context().new_page()
    page.goto(f"{demo.url}/guard/login?lang=en&next=/guard/community/imports")
    page.fill("input[name=name]", "wu")
    page.fill("input[name=password]", "office-admin-pw")
    page.click("button[type=submit]")
    page.wait_for_url("**/guard/community/imports*")
    (folder / "map.csv").write_text(MAP)
    page.select_option("select[name=kind]", "compound")
    page.set_input_files("input[name=file]", str(folder / "map.csv"))
    page.click("#upload button[type=submit]")
    page.click("#plan button[type=submit]")
    page.wait_for_selector(".flash.ok")
    page.context.close()
    today = core.clock.now().date()
    core.lists.add_quarantine(
        "3-1-702", None, str(today), str(today.replace(year=today.year + 1)), "wu"
    )


@pytest.fixture(scope="module")
def console_pages(demo, browser, tmp_path_factory) -> list[str]:
    """Every console page reachable by its links from the live page (GET pages under
    /guard), with a pass issued so the passes page has its table and card, and the
    compound's map imported with a home in quarantine."""
    import_the_map(demo, browser, tmp_path_factory.mktemp("map"))
    page = signed_in(browser, demo, "/guard/passes?lang=en")
    page.fill("#pass-form input[name=household]", "3-402")
    page.fill("#pass-form input[name=holder]", "王秀英")
    page.click("#pass-form button[type=submit]")
    page.wait_for_selector("#passes tbody tr[data-pass]")
    found, todo = [], ["/guard"]
    while todo and len(found) < 40:
        path = todo.pop(0)
        if path in found:
            continue
        page.goto(demo.url + path)
        found.append(path)
        links = page.evaluate(
            "() => [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))"
        )
        for href in links:
            href = href.split("#")[0]
            if href.startswith("/guard") and not NOT_A_PAGE.search(href) and href not in found:
                todo.append(href)
    page.context.close()
    return found


def walk(browser, demo, pages, check: Callable[[Any], list[str]], **viewport) -> dict:
    """Each page's problems with ``check`` (pages without any left out), plus the sign-in
    page's and a confirmation step's (a pass about to be voided), which no link reaches."""
    problems: dict[str, list[str]] = {}
    lang = viewport.pop("lang", "en")
    page = browser.new_context(viewport=viewport or {"width": 1366, "height": 900}).new_page()
    page.goto(f"{demo.url}/guard/login?lang={lang}")
    problems["login"] = check(page)
    page.fill("input[name=name]", demo.session.guard_user)
    page.fill("input[name=password]", demo.session.guard_password)
    page.click("button[type=submit]")
    page.wait_for_url("**/guard*")
    for path in pages:
        page.goto(demo.url + path)
        problems[path] = check(page)
    page.goto(demo.url + "/guard/passes")
    page.locator("#passes button.revoke").first.click()
    page.wait_for_selector("#confirm-step")
    problems["confirm step"] = check(page)
    page.context.close()
    return {path: found for path, found in problems.items() if found}


def listed(found: dict[str, list[str]]) -> str:
    """The problems one a line, under their page: what a failing walk says."""
    return "\n".join(f"{path}: {problem}" for path, each in found.items() for problem in each)


def test_the_checks_find_what_they_look_for(browser):
    """Each check on a page made to break it: a check that cannot fail proves nothing."""
    page = browser.new_context(viewport={"width": 320, "height": 600}).new_page()
    page.set_content(
        """<html lang="en"><head><title>Other</title><style>
        :focus { outline: none } .wide { width: 500px }</style></head><body>
        <h2>Second first</h2><h4>Skipped</h4><main>
        <input name="unnamed"><button></button><img src="data:,">
        <p style="color:#aaa;background:#fff">Faint text</p>
        <a href="#" style="display:inline-block;width:20px;height:20px">x</a>
        <div class="wide">Too wide</div><nav><a class="on" href="#">Here</a></nav>
        <nav></nav></main></body></html>"""
    )
    assert len(a11y.unnamed_controls(page)) == 3
    found = " ".join(a11y.structure(page, "zh-CN"))
    for problem in ("html lang", "not one h1", "jumps from 2 to 4", "does not start",
                    "not told apart", "aria-current"):  # fmt: skip
        assert problem in found
    assert any("Faint text" in p for p in a11y.low_contrast(page))
    assert a11y.reflow(page)
    assert any("20x20 a" in p for p in a11y.small_targets(page))
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<b class=fever>38.4 °C</b>')")
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<a href=/a>Go</a><a href=/b>Go</a>')"
    )
    assert a11y.same_names(page) == ['two "Go": /a and /b']
    assert a11y.colour_only(page) == ['b.fever says only "38.4 °C"']
    assert a11y.tab_walk(page)[1]
    page.context.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_console_page_is_named_titled_and_in_its_language(demo, browser, console_pages, lang):
    """A screen reader meets, on every page: the chosen language (``lang``), a title that
    says which page it is, one h1 and headings in order, one main, two navigations told apart
    with the current page marked, a name on every control, link and image, and no two
    buttons or links that do different things under one name."""
    assert {"/guard", "/guard/register", "/guard/community"} <= set(console_pages)
    found = walk(
        browser, demo, console_pages,
        lambda page: a11y.structure(page, lang) + a11y.unnamed_controls(page)
        + a11y.same_names(page),
        lang=lang,
    )  # fmt: skip
    assert not found, listed(found)


def test_every_console_page_title_is_its_own(demo, browser, console_pages):
    page = signed_in(browser, demo, "/guard?lang=en")
    titles = {}
    for path in console_pages:
        page.goto(demo.url + path)
        titles.setdefault(page.title(), []).append(path)
    page.context.close()
    assert {t: p for t, p in titles.items() if len(p) > 1 and "/passage/" not in p[0]} == {}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_text_on_every_console_page_has_contrast(demo, browser, console_pages, lang):
    """WCAG AA (4.5:1, 3:1 for large text) for every visible text against what is drawn
    behind it, read from the page as drawn: the console in sunlight."""
    found = walk(browser, demo, console_pages, a11y.low_contrast, lang=lang)
    assert not found, listed(found)


def test_every_console_page_shows_where_the_keyboard_is(demo, browser, console_pages):
    """Tab from the top through every page: each stop draws a ring of 2 px or more at 3:1
    against what is around it (the guard on the office PC with a keyboard only)."""
    found = walk(browser, demo, console_pages, lambda page: a11y.tab_walk(page)[1])
    assert not found, listed(found)


@pytest.mark.parametrize(
    "viewport",
    [{"width": 320, "height": 640}, {"width": 640, "height": 450}],
    ids=["320px", "zoom-200"],
)
def test_no_console_page_scrolls_sideways_at_320px_or_200_percent(
    demo, browser, console_pages, viewport
):
    """WCAG 1.4.10: at 320 CSS px (a small phone, or 400 % zoom) and at 1280×900 zoomed to
    200 % nothing reaches past the screen's edge; a table may scroll inside its own box."""
    found = walk(browser, demo, console_pages, a11y.reflow, **viewport)
    assert not found, listed(found)


def test_every_target_on_the_phone_layout_takes_a_gloved_finger(demo, browser, console_pages):
    """44×44 CSS px for every button, field, choice and link standing on its own (a link
    inside a sentence is exempt) on the phone layout."""
    found = walk(browser, demo, console_pages, a11y.small_targets, **PHONE)
    assert not found, listed(found)


#: The live regions of the page that hold words only (a region around buttons and fields
#: would read them all again at every update), with what they say now.
LIVE_WORDS = """() => [...document.querySelectorAll('[aria-live], [role=alert], [role=status]')]
    .filter(r => r.getAttribute('aria-live') !== 'off' && !r.closest('[hidden]')
                 && !r.querySelector('button, input, select, textarea, a[href]'))
    .map(r => r.textContent.trim()).filter(Boolean)"""

FOCUSED = """() => { const el = document.activeElement;
    return {alarm: el.closest('.alarm') ? el.closest('.alarm').dataset.key : null,
            what: el.tagName.toLowerCase() + '.' + el.className, name: el.name || null,
            value: el.value ?? null}; }"""


def test_a_new_alarm_is_announced_and_the_guard_keeps_their_place(demo, browser):
    """A fever at the gate while the guard is working on the live page: a live region says
    the new alarm (a screen reader speaks it at once) without taking the focus; the reason
    half typed keeps its words and the focus, and a guard on an alarm's button stays on it
    while the cards are drawn again."""
    page = signed_in(browser, demo, "/guard?lang=en")
    page.wait_for_selector("#alarm-list .alarm")
    count = page.locator("#alarm-list .alarm").count()
    page.click("#manual-form input[name=reason]")
    page.keyboard.type("checked by ha")
    demo.play("fever", household="C-303", holder="Li Na")  # another person: a new alarm
    wait_for(lambda: page.locator("#alarm-list .alarm").count() > count)
    assert page.evaluate(FOCUSED) == {
        "alarm": None, "what": "input.", "name": "reason", "value": "checked by ha"
    }  # fmt: skip
    title = page.locator("#alarm-list .alarm .a-title").first.inner_text()
    wait_for(lambda: any(title.split()[0] in words for words in page.evaluate(LIVE_WORDS)), 5)

    first = page.locator("#alarm-list .alarm").first
    key = first.get_attribute("data-key")
    first.locator("button.ack").focus()
    count = page.locator("#alarm-list .alarm").count()
    wait_idle(demo)
    demo.play("fever", household="D-404", holder="Sun Li")
    wait_for(lambda: page.locator("#alarm-list .alarm").count() > count)
    focused = page.evaluate(FOCUSED)
    assert (focused["alarm"], focused["what"]) == (key, "button.ack")
    page.context.close()


def test_the_manual_confirmation_closes_with_escape_and_gives_the_focus_back(demo, browser):
    """The confirmation line of a manual pass, by keyboard: Escape closes it and Cancel
    does too, each putting the focus back on the button that asked (never on the page,
    where the guard would Tab from the top again); nothing is decided."""
    page = signed_in(browser, demo, "/guard?lang=en")
    page.check("#subject-none")
    page.select_option("#manual-form select[name=direction]", "in")
    page.fill("#manual-form input[name=reason]", "delivery, known driver")
    before = demo.session.core.store.last_seq
    for close in ("Escape", "#manual-confirm-no"):
        page.focus("#manual-form button[value=pass]")
        page.keyboard.press("Enter")
        page.wait_for_selector("#manual-confirm", state="visible")
        if close == "Escape":
            page.keyboard.press("Escape")
        else:
            page.focus(close)
            page.keyboard.press("Enter")
        page.wait_for_selector("#manual-confirm", state="hidden", timeout=3000)
        assert page.evaluate(FOCUSED)["what"] == "button.pass", close
    assert demo.session.core.store.last_seq == before
    page.context.close()


def test_the_manual_confirmation_says_the_reason_as_typed(demo, browser):
    """The confirmation line quotes the guard's reason word for word: a reason holding what
    a string replacement reads as its own ($&, $', $$) or the other placeholder's name is
    shown as typed, never rewritten (the guard confirms what they read)."""
    page = signed_in(browser, demo, "/guard?lang=en")
    page.check("#subject-none")
    page.select_option("#manual-form select[name=direction]", "in")
    reason = "paid $$5, owes $& and $' {who}"
    page.fill("#manual-form input[name=reason]", reason)
    before = demo.session.core.store.last_seq
    page.click("#manual-form button[value=pass]")
    line = page.locator("#manual-confirm-text")
    line.wait_for()
    assert reason in line.inner_text()
    page.click("#manual-confirm-no")
    assert demo.session.core.store.last_seq == before
    page.context.close()


def test_the_manual_confirmation_says_what_a_person_without_a_pass_is_checked_by(demo, browser):
    """A person without a pass: the confirmation line names the dwelling typed (its holds are
    checked), or says that with none nothing can be checked (before 2026-12-07 it said
    nothing of it, and nothing was checked)."""
    page = signed_in(browser, demo, "/guard?lang=en")
    page.check("#subject-none")
    page.select_option("#manual-form select[name=direction]", "in")
    page.fill("#manual-form input[name=reason]", "lost the paper pass")
    line = page.locator("#manual-confirm-text")
    for household, said in (
        ("", "nothing can be checked"),
        ("3-402", "a person without a pass · 3-402"),
    ):
        page.fill("#manual-form input[name=household]", household)
        page.click("#manual-form button[value=pass]")
        line.wait_for()
        assert said in line.inner_text(), household
        page.click("#manual-confirm-no")
    page.context.close()


def test_no_status_is_told_by_its_colour_alone(demo, browser, console_pages):
    """WCAG 1.4.1: on every page, and in a row the live feed streams in, a fever, a pass, a
    deny or a device's state drawn in its colour also says so in words or a sign (a guard who
    does not tell red from green, a screen in sunlight, a black-and-white printout)."""
    found = walk(browser, demo, console_pages, a11y.colour_only)
    page = signed_in(browser, demo, "/guard?lang=zh-CN")
    rows = page.locator("#feed tbody tr").count()
    wait_idle(demo)
    demo.play("fever", household="E-505", holder="Qian Yu")
    wait_for(lambda: page.locator("#feed tbody tr").count() > rows)
    found["/guard, a streamed row"] = a11y.colour_only(page)
    page.context.close()
    found = {path: each for path, each in found.items() if each}
    assert not found, listed(found)


def test_nothing_moves_when_the_system_asks_for_reduced_motion(demo, browser):
    """prefers-reduced-motion: the pulsing alarm cards and a streamed row's flash stand
    still (the alarm still shows by its card, words and siren); without it they move."""
    page = signed_in(browser, demo, "/guard?lang=en")
    page.wait_for_selector("#alarm-list .alarm")
    assert a11y.running_animations(page)  # the alarms pulse for everyone else
    page.emulate_media(reduced_motion="reduce")
    page.reload()
    page.wait_for_selector("#alarm-list .alarm")
    rows = page.locator("#feed tbody tr").count()
    wait_idle(demo)
    demo.play("ok")
    wait_for(lambda: page.locator("#feed tbody tr").count() > rows)
    assert a11y.running_animations(page) == []
    page.context.close()


def test_the_shift_warning_is_said_when_it_changes_not_every_second(demo, browser):
    """The last ten minutes of a shift: the warning (an alert a screen reader speaks each
    time its words are written) is written when the minutes change, not every second, so
    the guard is not talked over for ten minutes. The page's clock is Playwright's."""
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    page.clock.install()
    page.goto(f"{demo.url}/guard/login?lang=en&next=/guard/health")
    page.fill("input[name=name]", demo.session.guard_user)
    page.fill("input[name=password]", demo.session.guard_password)
    page.click("button[type=submit]")
    page.wait_for_url("**/guard/health")
    left_s = page.evaluate("Number(document.body.dataset.sessionLeftS)")
    page.clock.run_for((left_s - 5 * 60 - 30) * 1000)  # five and a half minutes left
    page.wait_for_selector("#session-warning", state="visible")
    page.evaluate(
        """() => { window.writes = 0;
                   new MutationObserver((m) => { window.writes += m.length; })
                     .observe(document.getElementById('session-warning'),
                              {childList: true, subtree: true, characterData: true}); }"""
    )
    page.clock.run_for(20_000)  # twenty seconds inside one minute: the same words
    assert page.evaluate("window.writes") == 0
    page.clock.run_for(60_000)  # a minute on: the new words, written once
    assert 1 <= page.evaluate("window.writes") <= 2
    page.context.close()


def test_the_console_follows_a_larger_font_chosen_in_the_browser(demo, browser):
    """An older guard who set the browser's font size larger (24 px for its 16) gets the
    console's text larger in proportion, and no page scrolls sideways for it (WCAG 1.4.4);
    the screens' own 15 px was fixed whatever the browser was told."""
    found = {}
    page = signed_in(browser, demo, "/guard?lang=zh-CN")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Page.enable")
    cdp.send("Page.setFontSizes", {"fontSizes": {"standard": 24, "fixed": 20}})
    for path in ("/guard", "/guard/register", "/guard/health", "/guard/community/map"):
        page.goto(demo.url + path)
        size = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        found[path] = (
            [f"body text {size} px for the browser's 24"] if size < 22 else []
        ) + a11y.reflow(page)
    page.context.close()
    found = {path: each for path, each in found.items() if each}
    assert not found, listed(found)


@pytest.mark.parametrize("width", [1366, 360])
def test_each_chart_has_its_figures_for_a_screen_reader_and_looks_the_same(demo, browser, width):
    """Each statistics chart is followed by a table of its figures that a screen reader
    reads (in the accessibility tree, captioned with the chart's name) and nobody sees:
    the charts drawn without the tables are the same pixels."""
    page = signed_in(browser, demo, "/guard/stats?lang=en", width=width, height=900)
    names = page.eval_on_selector_all("svg[role=img]", "s => s.map(e => e.ariaLabel)")
    tables = page.locator("svg[role=img] + .sr-only table")
    assert tables.count() == len(names) == 4
    for name in names:
        assert page.get_by_role("table", name=name).count() == 1, name
    charts = page.locator(".g-grid")
    before = charts.screenshot()
    page.evaluate("document.querySelectorAll('svg[role=img] + .sr-only').forEach(e => e.remove())")
    assert charts.screenshot() == before
    page.context.close()
