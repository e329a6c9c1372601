"""The guard console in headless Chromium, against the real daemon on simulated devices
(the kiosk screen's browser tests are in test_browser_kiosk.py).

One daemon (``checkpoint.demo.start_demo``: the real core, engine runner and web server on the
MLX90614 emulator, fake camera and fake gate) runs in a thread with its own event loop.
Visitors come from the shipped scenarios, applied onto the devices as ``kiosk demo`` does.
One browser, two contexts (the gate screen and a guard's laptop). Screenshots go to a
temporary folder; ``KIOSK_SHOTS=docs/screenshots`` refreshes the ones the README and
docs/screens.md show instead (tests never write into the tree by themselves).

Real time passes here (a thermometer reading settles in about a second), so this file is
marked ``browser``; it still runs in CI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
#: Where ``shot`` writes: set once per module by ``shots_folder``.
SHOTS: dict[str, Path] = {}
GUARD_PW = "night-shift-pw"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoThread:
    """The real daemon on a loop of its own, so the test thread can drive the browser."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.session: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="demo-daemon", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            try:
                self.session = await self._start_daemon()
            except BaseException as exc:  # reported to the test thread
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            await self.session.daemon.run_until_signal()
            await self.session.daemon.stop()

        asyncio.run(main())

    async def _start_daemon(self) -> Any:
        """The daemon session this thread runs; a subclass starts another configuration."""
        return await start_daemon(self.data_dir, self.port)

    def start(self) -> DemoThread:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("daemon did not start")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self.loop is not None and self.session is not None:
            self.loop.call_soon_threadsafe(self.session.daemon.request_stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def play(self, scenario_name: str, **overrides: Any) -> dict:
        """Apply a shipped scenario's first step onto the devices; return the decision event."""
        from checkpoint.demo import device_target
        from checkpoint.replay import SCENARIO_DIR, ScenarioDriver, load_scenario

        core = self.session.core
        scenario = load_scenario(SCENARIO_DIR / f"{scenario_name}.toml")
        step = scenario.steps[0]
        if overrides:
            spec = step.pass_.model_copy(update=overrides)
            step = step.model_copy(update={"pass_": spec})
        driver = ScenarioDriver(scenario, core.clock, device_target(core), self.session.keys)
        before = core.store.last_seq
        driver.apply(0, step)
        event = wait_for(lambda: core.store.last_seq > before and core.store.events(before, 1))
        device_target(core).person_leaves()
        return event[0]


async def start_daemon(data_dir: Path, port: int) -> Any:
    """``checkpoint.demo.start_demo`` with the default rules and a shorter result hold, so
    passages follow quickly; the scenarios are played by the tests, not the demo stream."""
    from checkpoint import demo
    from kiosk.accounts import hash_password
    from kiosk.config import parse_config

    config = parse_config(
        {
            "site": {"kiosk_id": "demo-gate", "site_name": "Demo compound"},
            "web": {"host": "127.0.0.1", "port": port},
            "engine": {"result_hold_s": 2.5},
            "gate": {"pulse_ms": 2000},
        }
    )
    session = await demo.start_demo(data_dir, port, config=config)
    await asyncio.to_thread(
        session.core.accounts.add, "zhou", "guard", hash_password(GUARD_PW), "test"
    )
    return dataclasses.replace(session, guard_user="zhou", guard_password=GUARD_PW)


def wait_for(check: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def fill_form(page: Any, form: str, **fields: str) -> None:
    """Type each value into the input of that name in ``form`` (a selector), in order."""
    for name, value in fields.items():
        page.fill(f"{form} input[name={name}]", value)


def wait_idle(demo: DemoThread) -> None:
    engine = demo.session.core.runner.engine
    wait_for(lambda: engine.state == "idle" and not engine.gate_is_open)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[DemoThread]:
    d = DemoThread(tmp_path_factory.mktemp("demo")).start()
    yield d
    d.stop()


@pytest.fixture(scope="module", autouse=True)
def shots_folder(tmp_path_factory) -> Iterator[Path]:
    """``KIOSK_SHOTS`` when it names a folder (``docs/screenshots`` refreshes the docs'),
    else a temporary one."""
    chosen = os.environ.get("KIOSK_SHOTS")
    SHOTS["dir"] = Path(chosen) if chosen else tmp_path_factory.mktemp("shots")
    yield SHOTS["dir"]
    SHOTS.clear()


def shot(page: Any, name: str) -> None:
    SHOTS["dir"].mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS["dir"] / name))


def test_guard_handles_alarm_manual_pass_registrations_pass_quarantine_and_stats(demo, browser):
    session = demo.session
    core = session.core
    if not any(e["reasons"] == ["fever"] for e in core.store.events(0, 1000)):
        demo.play("fever")
        wait_idle(demo)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.add_init_script("window.print = () => { window.printed = (window.printed || 0) + 1; }")
    page = context.new_page()
    try:
        # Not signed in: the console sends us to the login page.
        page.goto(f"{demo.url}/guard?lang=en")
        assert "/guard/login" in page.url
        page.fill("input[name=name]", session.guard_user)
        page.fill("input[name=password]", session.guard_password)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/guard\?lang=en$|.*/guard$"))

        # The fever alarm cannot be missed; acknowledge it.
        alarm = page.locator(".alarm.kind-fever").first
        alarm.wait_for()
        assert "Fever" in alarm.inner_text()
        meta = alarm.locator(".a-meta").inner_text()
        assert re.search(r"\d\d-\d\d \d\d:\d\d:\d\d", meta), meta  # date and time
        assert "°C" in meta and re.search(r"\b(in|out)\b", meta), meta
        link = alarm.locator("a.a-link").first.get_attribute("href")
        assert re.fullmatch(r"/guard/passage/\d+", link), link
        shot(page, "guard-live.png")
        before = page.locator(".alarm.kind-fever").count()
        alarm.locator("button.ack").click()
        page.wait_for_load_state()
        assert page.locator(".alarm.kind-fever").count() == before - 1
        assert any(a["action"] == "alarm_ack" for a in core.store.audits(0, 1000))

        # Manual pass: choose whom it is about, read the confirmation line, then confirm.
        seq = core.store.last_seq
        page.check("#manual-form input[name=subject][value=none]")
        page.select_option("#manual-form select[name=direction]", "in")
        fill_form(
            page,
            "#manual-form",
            reason="resident without phone, known to guard",
            temp_c="36.6",
        )
        page.click("#manual-form button[value=pass]")
        line = page.locator("#manual-confirm-text")
        line.wait_for()
        assert "a person without a pass" in line.inner_text()
        assert "resident without phone" in line.inner_text()
        assert core.store.last_seq == seq  # nothing happens before the confirmation
        page.click("#manual-confirm-yes")
        page.wait_for_selector(".flash.ok")
        event = wait_for(lambda: core.store.last_seq > seq and core.store.events(seq, 1))[0]
        assert event["decision"] == "manual_pass" and event["operator"] == session.guard_user
        assert event["holder"] is None and event["temp_c"] == 36.6
        assert event["person"]["note"] == "resident without phone, known to guard"
        feed_text = page.inner_text("#feed")
        assert "resident without phone, known to guard" in feed_text and "by hand" in feed_text
        wait_idle(demo)

        # Register a visitor without a phone and a vehicle.
        page.goto(f"{demo.url}/guard/register")
        fill_form(
            page,
            "#person-form",
            name="Zhou Qiang",
            phone="13912345678",
            unit="6-1102",
            reason="visiting parents",
            temp_c="36.7",
        )
        page.click("#person-form button[type=submit]")
        page.wait_for_selector(".flash.ok")
        wait_idle(demo)
        fill_form(
            page,
            "#vehicle-form",
            plate="沪B52011",
            driver="Lu Ming",
            driver_temp="36.5",
            reason="furniture delivery",
        )
        page.click("#vehicle-form button[type=submit]")
        page.wait_for_selector(".flash.ok")
        wait_for(lambda: any(e["kind"] == "vehicle" for e in core.store.events(0, 1000)))
        page.reload()
        table = page.inner_text("#registrations")
        assert "Zhou Qiang" in table and "沪B52011" in table
        assert "139****5678" in table
        assert "13912345678" not in page.content()  # a guard's role does not see phone numbers
        shot(page, "guard-register.png")
        wait_idle(demo)

        # Issue and print a pass.
        page.goto(f"{demo.url}/guard/passes")
        fill_form(page, "#pass-form", household="7-301", holder="Chen Jing")
        page.click("#pass-form button[type=submit]")
        page.wait_for_selector("#issued svg")
        page.click("#print-card")
        assert page.evaluate("window.printed") == 1
        shot(page, "guard-pass.png")

        # Quarantine a household; the next scan of its pass going out is denied.
        page.goto(f"{demo.url}/guard/lists")
        fill_form(
            page,
            "#quarantine-form",
            household="Q-909",
            until="2026-12-31",
            note="returned from abroad",
        )
        page.click("#quarantine-form button[type=submit]")
        page.wait_for_selector(".flash.ok")
        assert "Q-909" in page.inner_text("#quarantine")
        shot(page, "guard-lists.png")
        event = demo.play("ok", household="Q-909", holder="Gao Yan")
        assert event["decision"] == "deny" and "quarantined" in event["reasons"]
        wait_idle(demo)

        # Statistics with charts drawn by our own code.
        page.goto(f"{demo.url}/guard/stats?lang=en")
        assert page.locator("svg.chart").count() == 4
        assert int(page.inner_text(".kpi.fever .v")) >= 1
        shot(page, "guard-stats.png")
        page.goto(f"{demo.url}/guard/health")
        shot(page, "guard-health.png")
    finally:
        context.close()
