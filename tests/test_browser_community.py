"""The community pages in headless Chromium against a real web server (uvicorn) on the real
core: the map, the returnee ledger, a service request, a handover, and the report printed and
exported as .xlsx (opened with openpyxl and its numbers checked)."""

from __future__ import annotations

import io
import re
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from guard_support import ADMIN_PW, GUARD_PW, make_core

from kiosk.clock import FakeClock
from kiosk.config import KioskConfig
from kiosk.store import EventDraft

pytestmark = pytest.mark.browser

MAP = "building,unit,floor,household\n3,1,7,3-1-701\n3,1,7,3-1-702\n3,1,1,3-1-101\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign_in_at(page, address: str, ready: str) -> None:
    """Open ``address`` (the console sends a stranger to its sign-in first), sign in as
    alice, and wait for ``ready`` on the page it comes back to."""
    page.goto(address)
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", GUARD_PW)
    page.click("button[type=submit]")
    page.wait_for_selector(ready)


@pytest.fixture
def site(tmp_path, monkeypatch):
    yield from serve(tmp_path, monkeypatch)


@pytest.fixture
def quota_site(tmp_path, monkeypatch):
    config = {"policy": {"quota": {"enabled": True, "exits": 1, "period_days": 2}}}
    yield from serve(tmp_path, monkeypatch, KioskConfig.model_validate(config))


def serve(tmp_path, monkeypatch, config=None):
    """The console on a real core (``config``: the default), served by uvicorn."""
    import uvicorn
    from fastapi import FastAPI

    from ui import guard, kiosk_screen

    data = tmp_path / "data"
    data.mkdir()
    clock = FakeClock(start=datetime(2026, 2, 12, 1, 0, tzinfo=UTC))  # 09:00 Shanghai
    core = make_core(data, clock, monkeypatch, config)
    app = FastAPI()
    kiosk_screen.install(app, core)
    guard.install(app, core)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.05)
    yield core, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    core.close()


def signed_in(browser, url, name, password):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    context.add_init_script("window.print = () => { window.printed = (window.printed || 0) + 1; }")
    page = context.new_page()
    page.goto(f"{url}/guard/community?lang=en")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def test_a_day_on_the_community_pages(site, browser, tmp_path):
    core, url = site
    admin = signed_in(browser, url, "root", ADMIN_PW)
    guard = signed_in(browser, url, "alice", GUARD_PW)
    try:
        # The manager imports the map: the changes first, then applied.
        (tmp_path / "map.csv").write_text(MAP)
        admin.goto(f"{url}/guard/community/imports?lang=en")
        admin.select_option("select[name=kind]", "compound")
        admin.set_input_files("input[name=file]", str(tmp_path / "map.csv"))
        admin.click("#upload button[type=submit]")
        assert admin.inner_text("#plan dd[data-key=added]") == "3"
        admin.click("#plan button[type=submit]")
        admin.wait_for_selector(".flash.ok")
        core.lists.add_quarantine("3-1-702", None, "2026-02-10", "2026-02-24", "root")

        # A returnee registered at the door, a reading with a fever.
        guard.goto(f"{url}/guard/community/returnees?lang=en")
        for field, value in (("name", "Wang Fang"), ("household", "3-1-701"),
                             ("phone", "13812345678"), ("origin", "Wuhan"),
                             ("date_back", "2026-02-12")):  # fmt: skip
            guard.fill(f"#register input[name={field}]", value)
        guard.click("#register button[type=submit]")
        guard.wait_for_selector(".flash.ok")
        assert "138****5678" in guard.inner_text("#ledger")  # a guard sees no phone number
        guard.fill("#ledger input[name=temp_c]", "38.2")
        guard.click("#ledger form[action$=temperature] button")
        guard.wait_for_selector('[data-alarm="fever"]')
        core.clock.advance(600)  # the day goes on (the server's clock is the test's)

        # A service request for the quarantined household, taken and done.
        guard.goto(f"{url}/guard/community/services?lang=en")
        guard.fill("#new-request input[name=household]", "3-1-702")
        guard.select_option("#new-request select[name=kind]", "medicine")
        guard.click("#new-request button[type=submit]")
        guard.click('button[data-action="take"]')
        guard.click('button[data-action="done"]')
        guard.wait_for_selector('tr[data-state="done"]')

        # The map: coloured by status; a household opens its people and requests.
        guard.goto(f"{url}/guard/community/map?lang=en")
        quarantined = guard.locator("td.c-home.st-quarantined")
        assert quarantined.count() == 1 and "st-open_request" not in quarantined.get_attribute(
            "class"
        )
        assert guard.locator("td.c-home.st-observing").count() == 1
        guard.click("[data-print]")
        assert guard.evaluate("window.printed") == 1
        guard.emulate_media(media="print")  # printable: the map, not the console around it
        assert guard.locator(".c-building").is_visible() and guard.locator(".g-top").is_hidden()
        guard.emulate_media(media="screen")
        guard.locator("td.c-home.st-observing a").click()
        assert "Wang Fang" in guard.inner_text("#people")

        # A handover: the manager puts alice on shift; alice hands over to root; both sign.
        admin.goto(f"{url}/guard/community/handover?lang=en")
        admin.fill("#shifts input[name=guard]", "alice")
        admin.fill("#shifts input[name=starts]", "2026-02-12T08:00")
        admin.fill("#shifts input[name=ends]", "2026-02-12T16:00")
        admin.click("#shifts button[type=submit]")
        admin.wait_for_selector(".flash.ok")
        guard.goto(f"{url}/guard/community/handover?lang=en")
        guard.fill("#on-duty input[name=incoming]", "root")
        guard.click("#on-duty button[type=submit]")
        card = guard.locator('[data-handover][data-complete="no"]')
        assert card.locator('dd[data-key="new_returnees"]').inner_text() == "1"
        assert card.locator('dd[data-key="open_alarms"]').inner_text() == "1"
        card.locator("button").click()
        admin.goto(f"{url}/guard/community/handover?lang=en")
        admin.locator('[data-handover][data-complete="no"] button').click()
        admin.wait_for_selector('[data-handover][data-complete="yes"]')

        # The day's report: printed, and exported as .xlsx with the same numbers.
        for direction in ("in", "in", "out"):
            core.store.append(EventDraft(direction=direction, decision="pass", temp_c=36.5))
        admin.goto(f"{url}/guard/community/report?day=2026-02-12&lang=en")
        row = admin.locator('tr[data-category="people"][data-item="in"] td').nth(2)
        assert row.inner_text() == "2"
        admin.click("[data-print]")
        assert admin.evaluate("window.printed") == 1
        admin.emulate_media(media="print")
        assert admin.locator(".c-nav").is_hidden() and admin.locator("#report").is_visible()
        admin.emulate_media(media="screen")
        with admin.expect_download() as download:
            admin.click("#xlsx")
        book = openpyxl.load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
        rows = book["daily report"].iter_rows(min_row=2, values_only=True)
        cells = {(r[0], r[1]): r[2] for r in rows}
        assert cells[("people", "in")] == 2 and cells[("people", "out")] == 1
        assert cells[("returnees", "new")] == 1 and cells[("fevers", "returnee_checks")] == 1
        assert cells[("service_requests", "done")] == 1
        assert cells[("quarantined_households", None)] == 1
        assert re.match(r"report-.*-2026-02-12\.xlsx", download.value.suggested_filename)
    finally:
        admin.context.close()
        guard.context.close()


def test_on_a_phone_the_returnee_ledger_and_requests_fit_and_a_reading_can_be_recorded(
    site, browser
):
    """A helper at the door has a phone: no sideways scrolling, and the reading's field and
    button are on the screen, whatever the names and places are like."""
    core, url = site
    led = core.ledgers
    led.observation.register(
        name="欧阳王芳芳芳芳芳芳芳芳芳芳芳", household="3-1-702", phone="13812345678",
        origin="湖北省武汉市江汉区某某街道某某社区某某小区", date_back="2026-02-05", days=14,
        note="需要每天电话联系家属确认情况", actor="root",
    )  # fmt: skip
    core.lists.add_quarantine("3-1-701", None, "2026-02-10", "2026-02-24", "root")
    led.services.open("3-1-701", "medicine", "alice", confined=True, note="降压药两盒，放门口")
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in_at(page, f"{url}/guard/community/returnees", "#ledger")
        for path in ("returnees", "services"):
            page.goto(f"{url}/guard/community/{path}")
            width = page.evaluate("document.scrollingElement.scrollWidth")
            assert width <= 390, (path, width)
        page.goto(f"{url}/guard/community/returnees")
        field = page.locator("#ledger input[name=temp_c]")
        button = page.locator("#ledger form[action$=temperature] button")
        for box in (field.bounding_box(), button.bounding_box()):
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        field.fill("38.3")
        button.click()
        page.wait_for_selector('[data-alarm="fever"]')
    finally:
        context.close()


def test_the_map_marks_a_quota_used_yesterday(quota_site, browser):
    """Quota one outing in two days: the resident who went out yesterday evening is marked on
    the map this morning (the gate would deny them), the household whose staff member went
    out is not (quota_exempt), and the legend names the mark."""
    core, url = quota_site
    cmap = core.ledgers.compound
    cmap.apply(cmap.plan_import(MAP.encode(), "map.csv"), "root")
    now = core.clock.now()
    core.clock.set_wall(now - timedelta(hours=12))  # yesterday, 21:00 Shanghai
    for household, flags in (("3-1-701", ()), ("3-1-702", ("quota_exempt",))):
        out = EventDraft(direction="out", decision="pass", household=household, flags=flags)
        core.history.record(core.store.append(out))  # committed, then recorded: as the engine
        core.clock.set_wall(now)
    page = signed_in(browser, url, "root", ADMIN_PW)
    try:
        page.goto(f"{url}/guard/community/map?lang=en")
        used = page.locator("td.c-home.st-quota_used")
        # The status by its shape (●) and, for a screen reader, its words, not colour alone.
        assert used.count() == 1 and used.inner_text().split() == [
            "3-1-701",
            "●",
            "Outing",
            "quota",
            "used",
            "up",
        ]
        assert used.locator("a").get_attribute("title").strip() == "Outing quota used up"
        chip = page.locator(".c-legend .c-chip.st-quota_used")
        assert chip.inner_text() == "● Outing quota used up"
        background = "e => getComputedStyle(e).backgroundColor"
        plain = page.locator("td.c-home", has_text="3-1-702").evaluate(background)
        assert used.evaluate(background) not in (plain, "rgba(0, 0, 0, 0)")
    finally:
        page.context.close()


def test_a_guard_registering_a_quarantined_households_member_out_is_warned(site, browser):
    """The unit typed shows the dwelling's quarantine at once (as the plate check does); the
    registration out comes back with the warning and a reason to give; confirmed, it is
    recorded with that reason."""
    core, url = site
    core.lists.add_quarantine("3-1-702", None, "2026-02-10", "2026-02-24", "root")
    page = signed_in(browser, url, "alice", GUARD_PW)
    try:
        page.goto(f"{url}/guard/register?lang=en")
        form = page.locator("#person-form")
        form.locator("input[name=name]").fill("Wang Fang")
        form.locator("input[name=unit]").fill("3-1-702")
        form.locator("input[name=reason]").click()  # the unit's change event
        check = page.locator("#unit-check")
        check.filter(has_text="home quarantine").wait_for()
        assert "unknown" in check.get_attribute("class")  # the warning colour
        form.locator("input[name=reason]").fill("pharmacy")
        form.locator("input[name=temp_c]").fill("36.5")
        form.locator("select[name=direction]").select_option("out")
        form.locator("button[type=submit]").click()
        page.wait_for_selector(".flash.err")
        assert "home quarantine" in page.inner_text(".flash.err")
        assert page.locator("#person-quarantine").is_visible()
        assert page.locator("#person-record-deny").is_visible()
        assert core.store.last_seq == 0  # nothing recorded, the gate did not open
        page.fill("#person-form input[name=quarantine_reason]", "hospital, with the doctor")
        page.click("#person-confirm-quarantine")
        page.wait_for_selector(".flash.ok")
        for _ in range(200):
            if core.store.last_seq:
                break
            page.wait_for_timeout(25)
        (event,) = core.store.events()
        assert event["decision"] == "manual_pass" and event["direction"] == "out"
        assert event["person"]["quarantine_reason"] == "hospital, with the doctor"
    finally:
        page.context.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_control_of_a_returnees_row_says_whose_row_it_is(site, browser, lang):
    """A screen reader going from control to control (Tab, its list of form fields) heard
    "Status, combo box", "Correct", "Name", "Temperature", "Record" on every returnee's row:
    whom each would change was said only in the row's first cells, which it skips. Every
    control of a row now says the person as the row shows them (the guard's masked view
    too), in the page's language; the manager's row has ten, the guard's two."""
    from playwright.sync_api import expect

    core, url = site
    for name, household in (("王芳", "3-2-701"), ("Li Lei", "3-2-702")):
        core.ledgers.observation.register(
            name=name, household=household, phone="13812345678", origin="武汉",
            date_back="2026-02-12", actor="root",
        )  # fmt: skip
    for who, password, controls in (("root", ADMIN_PW, 10), ("alice", GUARD_PW, 2)):
        page = signed_in(browser, url, who, password)
        try:
            page.goto(f"{url}/guard/community/returnees?lang={lang}")
            rows = page.locator("#ledger tr[data-person]")
            expect(rows).to_have_count(2)
            for row in rows.all():
                shown = row.locator("td").nth(1).inner_text().strip()
                for summary in row.locator("summary").all():
                    summary.click()  # the correction's fields, as the manager opens them
                found = row.locator("select, button, summary, input:not([type=hidden])")
                expect(found).to_have_count(controls)
                for control in found.all():
                    expect(control).to_have_accessible_name(re.compile(re.escape(shown)))
        finally:
            page.context.close()
