"""Issue 17 items 9–12 in Chromium against the real daemon on fakes: registration (no phone,
a fever refusal that keeps its fields and offers the button it names, a vehicle with its
occupants' temperatures and an unknown plate flagged, an earlier visitor found and copied),
the passes list (search, a batch printed to PDF whose QR codes decode, voiding after a
confirmation step, ending a quarantine after one), the statistics page (reason labels that
do not overlap) and its .xlsx export checked against the events, and the live page on a
390×844 phone."""

from __future__ import annotations

import html
import io
import re
from datetime import date, datetime
from typing import Any

import pytest
from test_browser import DemoThread, fill_form, shot, shots_folder, wait_for, wait_idle  # noqa: F401
from test_guard_browser import _rasterise

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = DemoThread(tmp_path_factory.mktemp("guard-screens")).start()
    yield d
    d.stop()


def signed_in(
    browser, demo, path: str, width: int = 1366, height: int = 900, **context: Any
) -> Any:
    """A guard signed in on a screen of that size; ``context``: more of the browser's
    (``is_mobile``, ``has_touch``: a phone's)."""
    page = browser.new_context(
        viewport={"width": width, "height": height}, accept_downloads=True, **context
    ).new_page()
    page.goto(f"{demo.url}{path}")
    page.fill("input[name=name]", demo.session.guard_user)
    page.fill("input[name=password]", demo.session.guard_password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*" + re.escape(path.split("?")[0]) + r"(\?.*)?$"))
    return page


def new_events(core, before: int) -> list[dict]:
    return wait_for(lambda: core.store.events(before, 100))


def test_registration_walk(demo, browser):
    from kiosk import vehicles
    from kiosk.vehicles import VehicleList

    core = demo.session.core
    core.store.submit(vehicles.MIGRATIONS.apply)
    cars = VehicleList(core.store, core.clock)
    cars.apply(cars.plan_import(b"plate,household\n\xe4\xba\xacA12345,3-402\n", "c.csv"), "t")
    page = signed_in(browser, demo, "/guard/register")

    # A person without a phone; first with a fever: refused, every field kept.
    form = "#person-form"
    fill_form(page, form, name="王秀英", unit="3-402", reason="看望母亲", temp_c="38.4")
    before = core.store.last_seq
    page.click(f"{form} button[type=submit]:not(#person-record-deny)")
    page.wait_for_selector("#person-record-deny")
    assert "登记为禁止通行" in page.inner_text(".flash.err")
    assert page.input_value(f"{form} input[name=name]") == "王秀英"
    assert page.input_value(f"{form} input[name=temp_c]") == "38.4"
    assert core.store.last_seq == before
    page.click("#person-record-deny")  # the button the message names exists
    (denied,) = new_events(core, before)
    assert denied["decision"] == "manual_deny" and denied["temp_c"] == 38.4
    assert "phone" not in denied["person"]
    wait_idle(demo)

    # A vehicle: a passenger added, an unknown plate flagged before deciding.
    vform = "#vehicle-form"
    page.fill(f"{vform} input[name=plate]", "沪B99999")
    page.press(f"{vform} input[name=plate]", "Tab")
    page.wait_for_selector("#plate-check.unknown")
    assert "非本小区登记车辆" in page.inner_text("#plate-check")
    fill_form(page, vform, driver="钱七", driver_temp="36.5", p1_name="钱八", p1_temp="36.8")
    page.click("#add-passenger")
    fill_form(page, vform, p2_name="钱九", p2_temp="36.6", reason="送货")
    before = core.store.last_seq
    page.click(f"{vform} button[type=submit]:not(#vehicle-record-deny)")
    page.wait_for_selector(".flash.ok")
    (car,) = new_events(core, before)
    assert car["kind"] == "vehicle" and car["decision"] == "manual_pass"
    assert [p["name"] for p in car["person"]["passengers"]] == ["钱八", "钱九"]
    assert car["person"]["plate_check"] == "unknown" and car["temp_c"] == 36.8
    assert "钱七 36.5 °C、钱八 36.8 °C、钱九 36.6 °C" in page.inner_text("#registrations")
    wait_idle(demo)

    # An earlier visitor found by phone suffix; the phone (masked for a guard) is copied.
    fill_form(
        page, form, name="李雷", phone="13900139000", unit="1-101", reason="送货", temp_c="36.5"
    )
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector(".flash.ok")
    wait_idle(demo)
    page.fill("#find-visitor input[name=q]", "9000")
    page.click("#find-visitor button[type=submit]")
    page.wait_for_selector("#found .use-visitor")
    assert "139****9000" in page.inner_text("#found")
    page.click("#found .use-visitor")
    assert page.input_value(f"{form} input[name=name]") == "李雷"
    assert page.is_visible("#copied-note")
    page.fill(f"{form} input[name=temp_c]", "36.6")
    before = core.store.last_seq
    page.click(f"{form} button[type=submit]")
    # Registered going the same way minutes ago: asked first (another tablet's?), then kept.
    page.wait_for_selector("#confirm-step")
    assert "李雷" in page.inner_text("#confirm-text")
    page.click("#confirm-yes")
    page.wait_for_selector(".flash.ok")
    (again,) = new_events(core, before)
    assert again["person"]["phone"] == "13900139000" and again["person"]["unit"] == "1-101"
    wait_idle(demo)


def test_passes_walk(demo, browser, tmp_path):
    import cv2

    from drivers.decoders import build_decoder

    core = demo.session.core
    page = signed_in(browser, demo, "/guard/passes")
    payloads = []
    for holder in ("韩梅梅", "林涛"):
        fill_form(page, "#pass-form", household="6-606", holder=holder, days="2")
        page.click("#pass-form button[type=submit]")
        page.wait_for_selector("#issued")
        payloads.append(html.unescape(page.get_attribute("#issued .svg-card", "data-payload")))
    ids = [core.trust.verify(p).pass_id for p in payloads]

    page.fill("#pass-search input[name=q]", "6-606")
    with page.expect_navigation():
        page.click("#pass-search button[type=submit]")
    for pass_id in ids:
        page.check(f"tr[data-pass='{pass_id}'] input[type=checkbox]")
    page.click("#print-selected")
    page.wait_for_selector("#cards")
    page.emulate_media(media="print")
    assert page.locator("#pass-list").is_hidden() and page.locator("header.g-top").is_hidden()
    pages = _rasterise(page.pdf(format="A4", print_background=True), tmp_path)
    decoder = build_decoder("zxing")
    codes = {
        c.data.decode("utf-8")
        for png in pages
        for c in decoder.decode(cv2.imread(str(png), cv2.IMREAD_GRAYSCALE), hard=True)
    }
    assert set(payloads) <= codes  # the batch reprinted: the very passes issued
    page.emulate_media(media="screen")

    # Void the first one from the list: a confirmation step first.
    page.goto(f"{demo.url}/guard/passes")
    page.fill("#pass-search input[name=q]", ids[0])
    with page.expect_navigation():
        page.click("#pass-search button[type=submit]")
    page.click(f"tr[data-pass='{ids[0]}'] button.revoke")
    page.wait_for_selector("#confirm-step")
    assert ids[0] in page.inner_text("#confirm-text") and "韩梅梅" in page.inner_text(
        "#confirm-text"
    )
    assert not core.lists.current.is_revoked(ids[0])
    page.fill("#confirm-form input[name=note]", "遗失")
    page.click("#confirm-yes")
    page.wait_for_selector(".flash.ok")
    assert core.lists.current.is_revoked(ids[0])
    assert "已挂失或作废" in page.inner_text(f"tr[data-pass='{ids[0]}']")

    # Ending a quarantine asks first; cancelling keeps it.
    core.lists.add_quarantine(
        household="8-808", holder=None, from_date=date(2020, 1, 1),
        until_date=date(2099, 1, 1), note="", actor="t",
    )  # fmt: skip
    page.goto(f"{demo.url}/guard/lists")
    row = page.locator("#quarantine tr", has_text="8-808")
    row.locator("button[type=submit]").click()
    page.wait_for_selector("#confirm-step")
    assert "8-808" in page.inner_text("#confirm-text")
    page.click("#confirm-no")
    page.wait_for_url(re.compile(r".*/guard/lists$"))
    assert any(q.household == "8-808" for q in core.lists.current.quarantine)
    page.locator("#quarantine tr", has_text="8-808").locator("button[type=submit]").click()
    page.click("#confirm-yes")
    page.wait_for_selector(".flash.ok")
    assert not any(q.household == "8-808" for q in core.lists.current.quarantine)


BOXES = """(sel) => [...document.querySelectorAll(sel)].map((e) => {
  const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom];
})"""


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


def test_statistics_and_the_xlsx_export(demo, browser, tmp_path):
    from openpyxl import load_workbook

    core = demo.session.core
    for scenario in ("fever", "expired", "unknown_key", "not_yet_valid", "ok"):
        demo.play(scenario)
        wait_idle(demo)
    page = signed_in(browser, demo, "/guard/stats")
    labels = page.evaluate(BOXES, "#by-reason svg text.label")
    assert len(labels) >= 3
    assert not any(_overlap(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :])
    axis = page.evaluate(
        "() => [...document.querySelectorAll('svg.chart text.axis')].map((t) => t.textContent)"
    )
    assert all(re.fullmatch(r"\d+", t) for t in axis), axis

    with page.expect_download() as dl:
        page.click("#export-xlsx")
    target = tmp_path / "day.xlsx"
    dl.value.save_as(target)
    book = load_workbook(io.BytesIO(target.read_bytes()))
    rows = list(book["通行记录"].iter_rows(values_only=True))
    day = page.input_value("input[name=day]")
    tz = core.tz
    events = [
        e for e in core.store.events(0, 10_000)
        if datetime.fromisoformat(e["ts"]).astimezone(tz).date().isoformat() == day
    ]  # fmt: skip
    assert rows[0][:5] == ("时间", "闸机", "方向", "类型", "结果")
    assert len(rows) - 1 == len(events)
    assert [r[0] for r in rows[1:]] == [
        datetime.fromisoformat(e["ts"]).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") for e in events
    ]
    temps = [r[6] for r in rows[1:]]
    assert temps == [round(e["temp_c"], 1) if e["temp_c"] is not None else None for e in events]
    figures = dict(book["当日统计"].iter_rows(values_only=True))
    assert figures["合计"] == len(events)
    assert figures["拒绝"] == sum(e["decision"] in ("deny", "manual_deny") for e in events)


OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def test_the_live_page_on_a_phone(demo, browser):
    for scenario in ("fever", "ok", "expired"):
        demo.play(scenario)
        wait_idle(demo)
    page = signed_in(browser, demo, "/guard", width=390, height=844)
    page.wait_for_selector("#alarm-list .alarm")
    page.evaluate("window.scrollTo(0, 0)")
    first_screen = 844
    alarm = page.locator("#alarm-list .alarm").first.bounding_box()
    ack = page.locator("#alarm-list .alarm button.ack").first.bounding_box()
    manual = page.locator("#manual-form button[value=pass]").bounding_box()
    deny = page.locator("#manual-form button[value=deny]").bounding_box()
    reason = page.locator("#manual-form input[name=reason]").bounding_box()
    for box in (alarm, ack, manual, deny, reason):
        assert box["y"] >= 0 and box["y"] + box["height"] <= first_screen, box
    feed = page.locator("#feed").bounding_box()
    assert feed["y"] > manual["y"]  # the feed comes after the alarms and the manual action
    assert page.evaluate(OVERFLOW) <= 0  # no sideways scrolling
    assert page.locator("#feed thead").is_hidden()  # the feed as cards
    row = page.locator("#feed tbody tr").first
    assert row.evaluate("r => getComputedStyle(r).display") == "block"
    box = row.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.locator("#feed tbody tr td[data-label]").count() > 0
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "guard-live-phone.png")
    # The tap asks for a confirmation the guard can see without looking for it: the line
    # came after the hints, below the screen, and the page did not move (the tap seemed lost).
    page.check("#subject-none")
    page.select_option("#manual-form select[name=direction]", "in")
    page.fill("#manual-form input[name=reason]", "forgot the pass")
    page.click("#manual-form button[value=pass]")
    yes = page.locator("#manual-confirm-yes")
    yes.wait_for(state="visible")
    on_screen = "e => (r => r.top >= 0 && r.bottom <= innerHeight)(e.getBoundingClientRect())"
    assert yes.evaluate(on_screen), yes.bounding_box()
    assert page.locator("#manual-confirm-text").evaluate(on_screen)
