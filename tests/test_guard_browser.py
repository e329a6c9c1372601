"""The guard console in Chromium against the real daemon on fakes (issue 17): a session that
warns before the shift ends and completes an action after signing in again, and printing (an
issued card and the daily report) checked by printing to PDF and rasterising it."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from support import need
from test_browser import GUARD_PW, DemoThread, wait_for, wait_idle

from drivers.clocksync import system_clock
from kiosk.clock import ShiftedClock

pytestmark = pytest.mark.browser

SHIFT_H = 1.0


class ElapsingClock(ShiftedClock):
    """The demo's clock, on which the test lets time pass: wall and monotonic time move
    together (a shift's age is real elapsed time, so a wall-clock step alone ends nothing)."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start, system_clock())
        self._elapsed_ns = 0

    def monotonic_ns(self) -> int:
        return super().monotonic_ns() + self._elapsed_ns

    def elapse(self, seconds: float) -> None:
        self._elapsed_ns += int(seconds * 1e9)
        self.jump(seconds)


async def start_short_shift_daemon(data_dir: Path, port: int) -> Any:
    """The demo daemon with a one-hour shift (the test lets its time pass)."""
    from checkpoint import demo
    from checkpoint.replay import SCENARIO_DIR, load_scenario
    from kiosk.accounts import hash_password
    from kiosk.config import parse_config

    config = parse_config(
        {
            "site": {"kiosk_id": "demo-gate", "site_name": "Demo compound"},
            "web": {"host": "127.0.0.1", "port": port, "session_hours": SHIFT_H},
            "engine": {"result_hold_s": 2.5},
            "gate": {"pulse_ms": 2000},
        }
    )
    start = load_scenario(SCENARIO_DIR / "demo.toml").start
    session = await demo.start_demo(data_dir, port, clock=ElapsingClock(start), config=config)
    await asyncio.to_thread(
        session.core.accounts.add, "zhou", "guard", hash_password(GUARD_PW), "test"
    )
    return dataclasses.replace(session, guard_user="zhou", guard_password=GUARD_PW)


class ShortShiftDemo(DemoThread):
    async def _start_daemon(self) -> Any:
        return await start_short_shift_daemon(self.data_dir, self.port)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = ShortShiftDemo(tmp_path_factory.mktemp("guard-demo"))
    d.start()
    yield d
    d.stop()


def sign_in(page: Any, demo: DemoThread, path: str = "/guard?lang=en") -> None:
    page.goto(f"{demo.url}{path}")
    page.fill("input[name=name]", demo.session.guard_user)
    page.fill("input[name=password]", demo.session.guard_password)
    page.click("button[type=submit]")


def test_the_shift_warns_before_it_ends_and_an_action_after_it_completes_after_sign_in(
    demo, browser
):
    core = demo.session.core
    demo.play("fever")
    wait_idle(demo)
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    sign_in(page, demo)
    page.wait_for_url(re.compile(r".*/guard(\?lang=en)?$"))
    alarm = page.locator(".alarm.kind-fever").first
    alarm.wait_for()
    assert page.locator("#session-warning").is_hidden()

    core.clock.elapse(SHIFT_H * 3600 - 5 * 60)  # five minutes of the shift left
    page.reload()
    warning = page.locator("#session-warning")
    warning.wait_for()
    assert "5 min" in warning.inner_text()

    core.clock.elapse(6 * 60)  # the shift is over; the guard presses 已处理 anyway
    acks = len([a for a in core.store.audits(0, 1000) if a["action"] == "alarm_ack"])
    page.locator(".alarm.kind-fever button.ack").first.click()
    page.wait_for_url(re.compile(r".*/guard/login\?.*resume=.*"))
    assert page.locator("#session-ended").is_visible()
    page.fill("input[name=name]", demo.session.guard_user)
    page.fill("input[name=password]", demo.session.guard_password)
    page.click("button[type=submit]")
    page.wait_for_selector(".flash.ok")  # the resumed action completed by itself
    done = wait_for(
        lambda: [a for a in core.store.audits(0, 1000) if a["action"] == "alarm_ack"][acks:]
    )
    assert done[0]["actor"] == demo.session.guard_user


def test_one_incident_is_one_alarm_and_several_close_at_once_with_an_outcome(demo, browser):
    core = demo.session.core
    for scenario in ("fever", "fever", "unknown_key"):
        demo.play(scenario)
        wait_idle(demo)
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    sign_in(page, demo)
    page.wait_for_url(re.compile(r".*/guard(\?lang=en)?$"))
    fever = page.locator(".alarm.kind-fever")
    foreign = page.locator(".alarm.kind-foreign")
    fever.first.wait_for()
    assert fever.count() == 1 and "2 times" in fever.first.inner_text()
    assert "Pass from another compound" in foreign.first.inner_text()
    assert "Forged" not in page.inner_text("#alarms")
    keys = [fever.first.get_attribute("data-key"), foreign.first.get_attribute("data-key")]
    for key in keys:
        page.check(f".alarm[data-key='{key}'] input.a-pick")
    page.select_option("#alarm-form select[name=resolution]", "false_alarm")
    page.click("#alarm-close-selected")
    page.wait_for_selector(".flash.ok")
    assert page.locator(".alarm.kind-fever").count() == 0
    assert page.locator(".alarm.kind-foreign").count() == 0
    closed = [a for a in core.store.audits(0, 1000) if a["action"] == "alarm_ack"][-1]
    assert sorted(closed["detail"]["keys"]) == sorted(keys)
    assert closed["detail"]["resolution"] == "false_alarm"


def _a_fever_card(demo: Any, browser: Any) -> tuple[Any, Any, Any, str]:
    """A fever played, a guard signed in on a console: the core, the page, the fever's card
    and the value its Done button sends (``KEY@COUNT``, as drawn)."""
    demo.play("fever")
    wait_idle(demo)
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    sign_in(page, demo)
    page.wait_for_url(re.compile(r".*/guard(\?lang=en)?$"))
    card = page.locator(".alarm.kind-fever").first
    card.wait_for()
    return demo.session.core, page, card, card.locator("button.ack").get_attribute("value")


def test_a_card_the_stream_drew_again_closes_with_what_it_counts_now(demo, browser):
    """A card's tick and Done send what it counted as drawn (a close after it counted more
    is refused: test_guard_alarms). The page kept current by its stream draws the card again
    as the incident grows, its count with it: the close from that page goes through, and
    closes the attempts the guard sees on it."""
    core, page, card, drawn = _a_fever_card(demo, browser)
    key = card.get_attribute("data-key")
    count = int(drawn.rpartition("@")[2])
    assert drawn == f"{key}@{count}"
    demo.play("fever")  # the same person again: the same card, one more attempt
    wait_idle(demo)
    card = page.locator(f".alarm[data-key='{key}']")
    wait_for(lambda: f"{count + 1} times" in card.inner_text())
    now = f"{key}@{count + 1}"
    assert card.locator("button.ack").get_attribute("value") == now
    assert card.locator("input.a-pick").get_attribute("value") == now
    acks = len([a for a in core.store.audits(0, 1000) if a["action"] == "alarm_ack"])
    card.locator("input.a-pick").check()
    page.click("#alarm-close-selected")
    page.wait_for_selector(".flash.ok")
    [closed] = [a for a in core.store.audits(0, 1000) if a["action"] == "alarm_ack"][acks:]
    assert closed["detail"]["keys"] == [key]


def test_a_tick_made_before_the_card_grew_closes_nothing_it_did_not_see(demo, browser):
    """A card ticked, then drawn again by the stream as one more attempt came: the tick
    stays, with the count it was made at, so "close ticked" is refused with how many more
    came since (never closing the attempt the guard ticked before it was there)."""
    core, page, card, drawn = _a_fever_card(demo, browser)
    key = card.get_attribute("data-key")
    count = int(drawn.rpartition("@")[2])
    card.locator("input.a-pick").check()  # ticked as it counted then
    demo.play("fever")  # one more attempt after the tick
    wait_idle(demo)
    card = page.locator(f".alarm[data-key='{key}']")
    wait_for(lambda: f"{count + 1} times" in card.inner_text())
    tick = card.locator("input.a-pick")
    assert tick.is_checked() and tick.get_attribute("value") == drawn
    assert card.locator("button.ack").get_attribute("value") == f"{key}@{count + 1}"
    acks = len([a for a in core.store.audits(0, 1000) if a["action"] == "alarm_ack"])
    page.click("#alarm-close-selected")
    page.wait_for_selector(".flash.err")
    assert "1 more attempt since your page showed it" in page.inner_text(".flash.err")
    assert [a for a in core.store.audits(0, 1000) if a["action"] == "alarm_ack"][acks:] == []
    assert page.locator(f".alarm[data-key='{key}']").count() == 1


def _rasterise(pdf: bytes, tmp_path: Path) -> list[Path]:
    gs = shutil.which("gs")
    need(gs is not None, "ghostscript (gs)")
    source = tmp_path / "printed.pdf"
    source.write_bytes(pdf)
    subprocess.run(
        [gs, "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pnggray", "-r200",
         f"-sOutputFile={tmp_path}/page-%d.png", str(source)],
        check=True,
        timeout=60,
    )  # fmt: skip
    return sorted(tmp_path.glob("page-*.png"))


def _ink(png: Path) -> float:
    import cv2

    gray = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    return float((gray < 128).mean())


def test_an_issued_card_prints_alone_and_its_qr_decodes_to_the_pass(demo, browser, tmp_path):
    import cv2

    from drivers.decoders import build_decoder

    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    sign_in(page, demo, "/guard/passes?lang=en")
    page.wait_for_url(re.compile(r".*/guard/passes.*"))
    page.fill("input[name=household]", "7-301")
    page.fill("input[name=holder]", "Chen Jing")
    page.fill("input[name=days]", "1")
    page.click("#pass-form button[type=submit]")
    page.wait_for_selector("#issued")
    payload = page.locator(".svg-card").get_attribute("data-payload")
    page.emulate_media(media="print")
    assert page.locator("header.g-top").is_hidden() and page.locator("#issued").is_visible()
    pages = _rasterise(page.pdf(format="A4", print_background=True), tmp_path)
    assert len(pages) == 1  # the card alone, not the form and the navigation
    gray = cv2.imread(str(pages[0]), cv2.IMREAD_GRAYSCALE)
    codes = [c.data.decode("utf-8") for c in build_decoder("zxing").decode(gray, hard=True)]
    assert html.unescape(payload) in codes


def test_the_daily_report_prints_with_its_figures_and_charts(demo, browser, tmp_path):
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    sign_in(page, demo, "/guard/stats?lang=en")
    page.wait_for_url(re.compile(r".*/guard/stats.*"))
    page.emulate_media(media="print")
    assert page.locator("#kpis").is_visible() and page.locator("svg.chart").first.is_visible()
    pages = _rasterise(page.pdf(format="A4", print_background=True), tmp_path)
    assert pages and _ink(pages[0]) > 0.005  # not a blank page
