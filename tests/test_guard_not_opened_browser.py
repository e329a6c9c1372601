"""The guard's live page in a real browser: a pass drawn as it arrived, then the row saying the
gate did not open for it (``not_opened:<seq>``) arriving on the stream, redraws that pass as
not let through (the script does it, not the server)."""

from __future__ import annotations

import asyncio
import re

import pytest
from guard_support import add_event
from test_browser import DemoThread

from ui import i18n

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = DemoThread(tmp_path_factory.mktemp("not-opened-demo"))
    d.start()
    yield d
    d.stop()


def _tell_the_streams(demo) -> None:
    """A health message on the daemon's bus: each stream reads the rows the log moved past."""
    runner = demo.session.core.runner

    async def publish():
        runner.publish({"type": "health", **runner.health()})

    asyncio.run_coroutine_threadsafe(publish(), demo.loop).result(10)


def test_a_pass_drawn_then_its_not_opened_row_is_redrawn_as_not_let_through(demo, browser):
    core = demo.session.core
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    page.goto(f"{demo.url}/guard?lang=en")
    page.fill("input[name=name]", demo.session.guard_user)
    page.fill("input[name=password]", demo.session.guard_password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/guard(\?lang=.*)?$"))
    passed = add_event(core, direction="out", household="9-909", pass_id="c0ffee000909")
    _tell_the_streams(demo)
    badge = page.locator(f'tr[data-seq="{passed.seq}"] .badge').first
    badge.wait_for(timeout=20_000)
    assert badge.inner_text().startswith("✔")
    add_event(core, direction="out", decision="deny", reasons=("stopping",),
              household="9-909", pass_id="c0ffee000909",
              flags=(f"not_opened:{passed.seq}",))  # fmt: skip
    _tell_the_streams(demo)
    failed = f"✖ {i18n.t('en', 'decision.pass_not_opened')}"
    page.wait_for_function(
        '([seq, text]) => document.querySelector(`tr[data-seq="${seq}"] .badge`)'
        "?.textContent === text",
        arg=[passed.seq, failed],
        timeout=20_000,
    )
    assert "deny" in (badge.get_attribute("class") or "")
