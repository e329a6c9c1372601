"""The guard console on a phone in Chromium against the real daemon on fakes: every entry of
the console's navigation is on the screen, whole, without scrolling, in both languages, and
the Community entry opens its page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import a11y_support as a11y
import pytest
from test_browser import (  # noqa: F401 (shots_folder: autouse)
    DemoThread,
    fill_form,
    shot,
    shots_folder,
    wait_for,
    wait_idle,
)
from test_guard_screens_browser import signed_in

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
NAV = ["/guard", "/guard/register", "/guard/passes", "/guard/lists", "/guard/stats",
       "/guard/health", "/guard/calibration", "/guard/community"]  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = DemoThread(tmp_path_factory.mktemp("guard-phone")).start()
    yield d
    d.stop()


def touch_signed_in(browser, demo, path: str, width: int, height: int) -> Any:
    """A guard signed in on a touch screen of that size (a phone, a 7" tablet): a mobile
    browser, so its media queries (``pointer: coarse``) and form controls are a phone's."""
    return signed_in(browser, demo, path, width, height, is_mobile=True, has_touch=True)


def nav_boxes(page: Any) -> dict[str, dict[str, float]]:
    """Each navigation link's box on the screen (``visible``: not clipped by its bar)."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.g-nav a')].map(a => {
            const r = a.getBoundingClientRect(), bar = a.parentElement.getBoundingClientRect();
            return [a.getAttribute('href'), {x: r.x, y: r.y, w: r.width, h: r.height,
              inBar: r.left >= bar.left - 0.5 && r.right <= bar.right + 0.5,
              whole: a.scrollWidth <= a.clientWidth}];
        }))"""
    )


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_nav_entry_is_on_a_phone_screen_without_scrolling(demo, browser, lang):
    page = signed_in(browser, demo, f"/guard/health?lang={lang}", **PHONE)
    page.evaluate("window.scrollTo(0, 0)")
    boxes = nav_boxes(page)
    assert list(boxes) == NAV
    for href, box in boxes.items():
        assert box["inBar"], (href, box)  # not cut off inside a bar that scrolls sideways
        assert box["whole"], (href, box)  # its words are not cut off either
        assert box["x"] >= 0 and box["x"] + box["w"] <= PHONE["width"], (href, box)
        assert box["y"] >= 0 and box["y"] + box["h"] <= PHONE["height"] / 3, (href, box)
        assert box["h"] >= 24  # a finger can hit it
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) <= 0
    page.locator(".g-nav a[href='/guard/community']").click()
    page.wait_for_url("**/guard/community")
    assert page.locator(".g-nav a.on").get_attribute("href") == "/guard/community"
    page.context.close()


#: For every cell of a table shown as cards: its label's right edge, and the left edge of each
#: element in it (its content must sit right of its label, never under it as if a label).
CELLS = """() => [...document.querySelectorAll('table.cards-on-phone td')].map(td => {
    const box = td.getBoundingClientRect(), style = getComputedStyle(td);
    const label = getComputedStyle(td, '::before').content;
    const first = parseFloat(style.gridTemplateColumns.split(' ')[0]) || 0;
    return {text: td.innerText.trim().slice(0, 40), label,
            labelRight: box.left + first, colspan: td.colSpan,
            lefts: [...td.children].filter(c => c.getClientRects().length)
                     .map(c => c.getBoundingClientRect().left)};
})"""


def test_table_cards_keep_every_value_beside_its_label_on_a_phone(demo, browser):
    page = signed_in(browser, demo, "/guard/passes?lang=zh-CN", **PHONE)
    [empty] = page.evaluate(CELLS)  # nothing issued yet: one row saying so
    assert empty["colspan"] > 1 and empty["label"] in ("none", "normal"), empty
    page.fill("#pass-form input[name=household]", "3-402")
    page.fill("#pass-form input[name=holder]", "王秀英")
    page.click("#pass-form button[type=submit]")
    page.wait_for_selector("#passes tbody tr[data-pass]")
    cells = page.evaluate(CELLS)
    assert any(c["lefts"] for c in cells)
    for cell in cells:
        for left in cell["lefts"]:
            assert left >= cell["labelRight"] - 0.5, cell  # the guard's name, the buttons
    page.context.close()


def test_the_service_requests_are_cards_inside_their_card_on_a_phone(demo, browser):
    core = demo.session.core
    today = core.clock.now().date().isoformat()
    core.lists.add_quarantine("5-702", None, today, "2999-01-01", "test")
    page = signed_in(browser, demo, "/guard/community/services?lang=zh-CN", **PHONE)
    page.fill("#new-request input[name=household]", "5-702")
    note = "买菜：青菜两斤，鸡蛋一盒，牛奶两箱，送到门口放在鞋柜上"
    page.fill("#new-request input[name=note]", note)
    page.click("#new-request button[type=submit]")
    row = page.locator("#requests tr[data-request]").first
    row.wait_for()
    assert row.evaluate("r => getComputedStyle(r).display") == "block"
    card = page.locator("#requests").bounding_box()
    for button in page.locator("#requests tr[data-request] button").all():
        box = button.bounding_box()
        assert box["x"] >= card["x"] and box["x"] + box["width"] <= card["x"] + card["width"]
    cells = page.evaluate(CELLS)
    assert any(c["label"] == '"备注"' for c in cells)
    page.context.close()


#: The alarm whose control is at a point of the screen, and which control it is.
UNDER = """([x, y]) => { const el = document.elementFromPoint(x, y);
    const card = el && el.closest('.alarm');
    return card ? [card.dataset.key, el.closest('button, input') ? el.closest('button, input')
                   .className : el.tagName] : null; }"""


def test_a_new_alarm_does_not_slide_another_alarms_done_under_the_guards_thumb(demo, browser):
    """On a phone the alarms scroll in a box of their own. A guard scrolled to an alarm's
    Done (one tap closes it) must not see a fever come in and another person's Done slide
    under the thumb: the new card went on top of the box and every card below moved down
    by one, so the tap closed the alarm of someone the guard had not read."""
    for n in range(3):
        wait_idle(demo)
        demo.play("fever", household=f"9-{n}01", holder=f"Zhou {n}")
    wait_idle(demo)
    page = touch_signed_in(browser, demo, "/guard?lang=zh-CN", **PHONE)
    cards = page.locator("#alarm-list .alarm")
    count = cards.count()
    assert count >= 3
    page.evaluate("document.getElementById('alarm-list').scrollTop = 1e6")
    done = page.locator("#alarm-list .alarm button.ack").last.bounding_box()
    thumb = [done["x"] + done["width"] / 2, done["y"] + done["height"] / 2]
    before = page.evaluate(UNDER, thumb)
    assert before is not None and before[1] == "ack", before
    demo.play("fever", household="9-901", holder="Qian Jun")
    wait_for(lambda: cards.count() > count)
    assert page.evaluate(UNDER, thumb) == before  # the same alarm's Done, where it was
    page.context.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_returnees_days_field_is_wide_enough_for_a_finger_on_a_phone(demo, browser, lang):
    """A phone's browser draws a number field as narrow as its words allow: the days of a
    returnee's observation (天数 / Days) came out 37 px wide beside its label, under a
    finger's 44, its 14 hard to read and to tap. Every field of the community's forms is
    at least 44 × 44 px on a phone."""
    page = touch_signed_in(browser, demo, f"/guard/community/returnees?lang={lang}", **PHONE)
    days = page.locator("#register input[name=days]").bounding_box()
    assert days["width"] >= 44 and days["height"] >= 44, days
    assert a11y.small_targets(page) == []
    page.context.close()


TABLET = {"width": 1024, "height": 600}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_target_on_a_7_inch_touch_tablet_takes_a_finger(demo, browser, lang):
    """A cheap 7" tablet at the gate (1024×600, touch) is wider than the phone layout: its
    buttons, fields, ticks, choices and the navigation were the desktop's (30-40 px high, a
    21 px tick on each alarm, 33 px navigation), hit with a gloved finger. Every target there
    is 44×44 CSS px as on a phone: on the live page with its alarms and manual action, the
    registration forms and a community page with its own navigation."""
    wait_idle(demo)
    demo.play("fever", household="7-701", holder="Tablet")  # an alarm: its tick and Done
    page = touch_signed_in(browser, demo, f"/guard?lang={lang}", **TABLET)
    page.wait_for_selector("#alarm-list .alarm")
    found = {"/guard": a11y.small_targets(page)}
    for path in ("/guard/register", "/guard/community/returnees"):
        page.goto(demo.url + path)
        found[path] = a11y.small_targets(page)
    page.context.close()
    assert {path: each for path, each in found.items() if each} == {}


def test_a_new_passage_does_not_push_the_feed_card_the_guard_is_reading(demo, browser):
    """A guard on a phone scrolled to the top of the feed, reading its newest card under
    the heading: the next passage went in above it and pushed that card a whole card
    (~200 px) down the screen. The browser keeps what is on screen still when it is lower in
    the feed; at its top too now, the new card coming in above, off the screen's top."""
    for household in ("8-801", "8-802"):
        wait_idle(demo)
        demo.play("ok", household=household, holder="Feed")
    wait_idle(demo)
    page = touch_signed_in(browser, demo, "/guard?lang=zh-CN", **PHONE)
    rows = page.locator("#feed tbody tr")
    first = rows.first
    seq = first.get_attribute("data-seq")
    page.evaluate("(r) => window.scrollTo(0, r.getBoundingClientRect().top + scrollY - 100)",
                  first.element_handle())  # fmt: skip
    reading = page.locator(f"#feed tbody tr[data-seq='{seq}']")
    before = reading.bounding_box()["y"]
    heading = page.locator(".live-feed h2").bounding_box()
    assert 0 <= heading["y"] < before < PHONE["height"] - 100  # both on the screen
    count = rows.count()
    demo.play("ok", household="8-803", holder="Feed")
    wait_for(lambda: rows.count() > count)
    assert abs(reading.bounding_box()["y"] - before) <= 1
    page.context.close()


def test_each_returnee_reminders_acknowledge_button_says_which_reminder(demo, browser):
    """A guard with a screen reader on a phone lists the returnees page's buttons: each
    reminder's was only "确认" (Acknowledge), a row of them for two people and several days,
    none saying whose day it closes. Each names its reminder, as each alarm's Done does."""
    core = demo.session.core
    back = core.clock.now().date() - timedelta(days=2)
    for name, household in (("欧阳娜", "6-601"), ("司马强", "6-602")):
        core.ledgers.observation.register(
            name=name, household=household, phone="", origin="武汉", date_back=back, actor="t"
        )
    page = touch_signed_in(browser, demo, "/guard/community/returnees?lang=zh-CN", **PHONE)
    snapshot = page.locator("#alarms ul").aria_snapshot()
    names = re.findall(r'button "([^"]*)"', snapshot)
    assert len(names) >= 4, snapshot  # two people, two days each at least
    assert len(set(names)) == len(names), names
    for name in names:
        assert "欧阳娜" in name or "司马强" in name, name
    page.context.close()


#: The lines a cell's words take on the screen.
LINES = """td => { const range = document.createRange(); range.selectNodeContents(td);
    return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size; }"""


def test_a_households_long_chinese_name_reads_on_a_line_or_two_on_a_phone(demo, browser):
    """Looking up a household on a phone: its people, requests and passages were tables of
    four columns squeezed into the screen, a returnee's long name broken two characters a
    line down a column seven lines high (欧阳 / 王芳 / 芳芳 ...). They are labelled cards as
    the console's other tables: the name reads on one line or two, beside its label."""
    core = demo.session.core
    led = core.ledgers
    led.compound.apply(led.compound.plan_import(b"building,unit,floor,household\n"
                                                b"5,1,3,5-1-301\n", "map.csv"), "t")  # fmt: skip
    name = "欧阳王芳芳芳芳芳芳芳芳芳芳芳"
    back = core.clock.now().date()
    led.observation.register(
        name=name, household="5-1-301", phone="", origin="武汉", date_back=back, actor="t"
    )
    row = led.compound.row_ids()["5-1-301"]
    page = touch_signed_in(browser, demo, f"/guard/community/household/{row}?lang=en", **PHONE)
    cell = page.locator("#people td", has_text=name[:4])
    lines = cell.evaluate(LINES)
    assert lines <= 2, lines
    assert cell.evaluate("td => getComputedStyle(td, '::before').content") != "none"
    assert a11y.reflow(page) == []
    page.context.close()


#: What a guard types about visitors, in the forms that take it: none may stay in the phone.
TYPED_ABOUT_PEOPLE = {
    "/guard/register": ("#person-form", {"name": "柳如烟", "phone": "13912340000",
                        "id_number": "110101199003079999", "unit": "2-1703", "reason": "送药",
                        "temp_c": "36.6"}),
    "/guard/passes": ("#pass-form", {"household": "2-1704", "holder": "柳如梦"}),
    "/guard/community/returnees": ("#register form", {"name": "柳如雪", "household": "2-1705",
                                   "phone": "13912341111", "origin": "武汉市汉口",
                                   "date_back": "2026-03-01"}),
}  # fmt: skip


def test_the_shared_phone_keeps_no_visitor_typed_into_the_console(demo, browser, tmp_path):
    """The console's phone or tablet at the gate is shared by every guard: its browser kept
    what was typed into the forms (a visitor's name, phone and ID number, a pass holder, a
    returnee's home town) in its profile and offered it to the next guard who tapped that
    field, past the kiosk's retention purge. The forms about people keep nothing there."""
    import sqlite3

    profile = tmp_path / "profile"
    context = browser.browser_type.launch_persistent_context(  # a profile of its own
        profile, executable_path="/usr/bin/chromium", headless=True,
        args=["--no-sandbox", "--disable-gpu"], viewport=PHONE, is_mobile=True, has_touch=True,
    )  # fmt: skip
    page = context.new_page()
    page.goto(f"{demo.url}/guard/login?lang=zh-CN&next=/guard/register")
    page.fill("input[name=name]", demo.session.guard_user)
    page.fill("input[name=password]", demo.session.guard_password)
    page.click("button[type=submit]")
    page.wait_for_url("**/guard/register")
    for path, (form, fields) in TYPED_ABOUT_PEOPLE.items():
        page.goto(demo.url + path)
        for name, value in fields.items():
            page.fill(f"{form} input[name={name}]", value)
        with page.expect_navigation():
            page.click(f"{form} button[type=submit]")
    context.close()  # the profile is written out
    with sqlite3.connect(profile / "Default" / "Web Data") as db:
        kept = {value for (value,) in db.execute("select value from autofill")}
    typed = {value for _, fields in TYPED_ABOUT_PEOPLE.values() for value in fields.values()}
    assert kept & typed == set()
    assert kept  # the profile does keep what a form may keep (the sign-in's name)


LANDSCAPE = {"width": 640, "height": 360}  # a 360×640 phone turned on its side


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_phone_turned_on_its_side_shows_the_first_alarms_done(demo, browser, lang):
    """A guard turns the phone on its side: wider than the phone layout, the console drew
    the desktop's header, the site's name, "signed in as" and the navigation on three rows,
    over half of the 360 px screen, and pushed the first alarm's Done below it. The header
    keeps to a third of a screen that short, and the first alarm's Done is on it."""
    wait_idle(demo)
    demo.play("fever", household="6-603", holder="Side")  # an alarm at least
    page = touch_signed_in(browser, demo, f"/guard?lang={lang}", **LANDSCAPE)
    page.wait_for_selector("#alarm-list .alarm")
    header = page.locator(".g-top").bounding_box()
    assert header["height"] <= LANDSCAPE["height"] / 3, header
    done = page.locator("#alarm-list .alarm button.ack").first.bounding_box()
    assert done["y"] >= 0 and done["y"] + done["height"] <= LANDSCAPE["height"], done
    assert a11y.reflow(page) == []
    page.context.close()


def test_a_residents_car_registered_on_a_phone_keeps_its_flag_inside_its_card(demo, browser):
    """A car registered at the gate on a phone, in English: the day's list flagged it
    "Resident's car (dwelling 12-3-2401B)" on one unbreakable line, past the card's edge
    and the screen's, so the page scrolled sideways. The flag wraps inside its card."""
    from kiosk import vehicles
    from kiosk.vehicles import VehicleList

    core = demo.session.core
    core.store.submit(vehicles.MIGRATIONS.apply)
    cars = VehicleList(core.store, core.clock)
    cars.apply(cars.plan_import("plate,household\n京A54321,12-3-2401B\n".encode(), "c.csv"), "t")
    page = touch_signed_in(browser, demo, "/guard/register?lang=en", **PHONE)
    fill_form(page, "#vehicle-form", plate="京A54321", driver="Ouyang Murong",
              driver_temp="36.5", reason="delivery")  # fmt: skip
    page.click("#vehicle-form button[type=submit]")
    flag = page.locator("#registrations .plate-flag").first
    flag.wait_for()
    card = flag.locator("xpath=ancestor::tr").bounding_box()
    box = flag.bounding_box()
    assert box["x"] + box["width"] <= card["x"] + card["width"], (box, card)
    assert a11y.reflow(page) == []
    page.context.close()


def test_a_passage_on_a_phone_gives_its_values_the_width_of_the_card(demo, browser):
    """A passage opened from an alarm on a phone, in English: its longest label ("People in
    the car and temperatures", "Hand-measured temperature") set the width of the labels'
    column, and the values were squeezed into a third of the card, the time on four lines,
    a name and plate broken over three. The values have most of the card's width."""
    page = touch_signed_in(browser, demo, "/guard/register?lang=en", **PHONE)
    fill_form(page, "#vehicle-form", plate="沪C24680", driver="Ouyang Murong",
              driver_temp="36.5", p1_name="Shangguan Huangfu", p1_temp="36.6",
              reason="moving house")  # fmt: skip
    before = demo.session.core.store.last_seq
    page.click("#vehicle-form button[type=submit]")
    page.wait_for_selector("#registrations")
    page.goto(f"{demo.url}/guard/passage/{before + 1}")
    facts = page.locator("dl.facts")
    assert "Shangguan" in facts.inner_text()
    width = facts.bounding_box()["width"]
    for dd in facts.locator("dd").all():
        assert dd.bounding_box()["width"] >= width / 2, dd.inner_text()
    assert facts.locator("dd").first.evaluate(LINES) <= 2  # the time
    page.context.close()


#: The lines a piece of text (``[selector, text]``) takes on the screen.
TEXT_LINES = """([sel, text]) => { const el = document.querySelector(sel);
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const at = n.textContent.indexOf(text);
        if (at < 0) continue;
        const range = document.createRange();
        range.setStart(n, at); range.setEnd(n, at + text.length);
        return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
    }
    return null; }"""


def test_a_plate_is_never_broken_over_two_lines_on_a_phone(demo, browser):
    """A car's passage on a phone: its who line, a long driver's name and the plate, broke
    between the plate's province and its number (京 / A13579): the plate is read whole,
    the line breaking between the name and the plate."""
    page = touch_signed_in(browser, demo, "/guard/register?lang=en", **PHONE)
    fill_form(page, "#vehicle-form", plate="京A13579", driver="欧阳慕容司马诸葛",
              driver_temp="36.5", reason="delivery")  # fmt: skip
    before = demo.session.core.store.last_seq
    page.click("#vehicle-form button[type=submit]")
    page.wait_for_selector("#registrations")
    page.goto(f"{demo.url}/guard/passage/{before + 1}")
    assert page.evaluate(TEXT_LINES, ["#passage dl", "京A13579"]) == 1
    assert page.evaluate(TEXT_LINES, ["#passage dl", "欧阳慕容司马诸葛"]) == 1
    page.context.close()


def test_scrolling_the_alarms_to_their_end_does_not_scroll_the_page_on(demo, browser):
    """On a phone the alarms scroll in a box of their own. A guard who scrolled them to the
    last card and went on had the page scroll on under the finger (scroll chaining), the
    manual action sliding away; drawn down at the page's top, Android's Chrome reloads the
    page (pull-to-refresh), a half-typed reason with it. The box keeps its overscroll
    (``overscroll-behavior: contain``). A headless Chromium scrolls nothing by touch and
    draws no pull-to-refresh: proved here are the style and the chaining it stops, by the
    wheel (the same rule in Chromium); the finger's gesture wants a real phone."""
    for n in range(4):
        wait_idle(demo)
        demo.play("fever", household=f"8-{n}02", holder=f"Sun {n}")
    wait_idle(demo)
    page = touch_signed_in(browser, demo, "/guard?lang=zh-CN", **PHONE)
    box = page.locator("#alarm-list")
    assert box.evaluate("b => b.scrollHeight > b.clientHeight + 40")  # it does scroll
    assert page.evaluate("document.documentElement.scrollHeight > innerHeight + 300")
    end = box.evaluate("b => { b.scrollTop = 1e6; return b.scrollTop; }")
    page.evaluate("window.scrollTo(0, 0)")
    area = box.bounding_box()
    page.mouse.move(area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)
    for _ in range(3):
        page.mouse.wheel(0, 200)
        page.wait_for_timeout(100)
    assert page.evaluate("window.scrollY") == 0
    assert box.evaluate("b => b.scrollTop") == end
    assert box.evaluate("b => getComputedStyle(b).overscrollBehaviorY") == "contain"
    page.context.close()


def test_a_person_without_a_pass_is_asked_which_way_on_a_phone(demo, browser):
    """A guard at the gate with a phone: a person without a pass, their dwelling typed (home
    quarantine), the direction left at "auto". Before 2026-12-07 the confirmation line said
    no way, the site's default (``in``) was recorded and nothing was held: the resident
    walked out unasked, the outing uncounted (rv30a). Now the form asks which way before any
    confirmation; chosen, the line says it and the quarantine is held."""
    core = demo.session.core
    led = core.ledgers  # 5-101 on the compound map, whatever map a test before it imported
    led.compound.apply(led.compound.plan_import(b"building,unit,floor,household\n"
                                                b"5,1,1,5-101\n", "map.csv"), "t")  # fmt: skip
    today = core.clock.now().date().isoformat()
    core.lists.add_quarantine("5-101", None, today, "2099-01-01", "root")
    before = core.store.last_seq
    page = touch_signed_in(browser, demo, "/guard?lang=en", 390, 844)
    page.check("#subject-none")
    page.fill("#manual-form input[name=reason]", "lost the paper pass, going to the shop")
    page.fill("#manual-form input[name=household]", "5-101")
    way = page.locator("#manual-form select[name=direction]")
    assert way.input_value() == ""  # "auto", as the form starts
    page.click("#manual-form button[value=pass]")
    assert way.evaluate("s => s.validity.valueMissing")  # the browser asks for the way
    assert page.locator("#manual-confirm").is_hidden()
    way.select_option("out")
    page.click("#manual-form button[value=pass]")
    line = page.locator("#manual-confirm-text")
    line.wait_for()
    assert "direction out" in line.inner_text() and "5-101" in line.inner_text()
    page.locator("#manual-confirm-yes").click()
    page.wait_for_selector("input[name=quarantine_reason]")  # held: asked, nothing recorded
    assert core.store.last_seq == before
    page.context.close()
