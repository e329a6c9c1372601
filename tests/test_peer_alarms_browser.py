"""A gate of the compound going unknown here, as the guard on the live page meets it in
Chromium against the real daemon: a card that says which gate and since when (words, not
colour alone), said once by the words-only live region, gone when the gate answers again."""

from __future__ import annotations

from typing import Any

import pytest
from test_browser import (  # noqa: F401 (shots_folder: autouse)
    DemoThread,
    shots_folder,
    wait_for,
)
from test_guard_a11y_browser import LIVE_WORDS
from test_guard_screens_browser import signed_in

pytestmark = pytest.mark.browser

CARD = '#alarm-list .alarm[data-key="device:peer:gate-north"]'


class Peers:
    """The daemon's peer sync as its health report reads it: one gate, stale or heard."""

    def __init__(self, stale_since: str) -> None:
        self.stale_since: str | None = stale_since

    def status(self) -> list[dict[str, Any]]:
        stale = self.stale_since is not None
        return [
            {
                "kiosk_id": "gate-north",
                "url": "https://gate-north.lan",
                "state": "stale" if stale else "ok",
                "last_success": None if stale else self.heard,
                "stale_since": self.stale_since,
                "rows_held": 0,
                "last_error": "no answer (ConnectError)" if stale else None,
                "ahead_dropped": 0,
                "clock_skew_s": None,
                "clock_skewed": False,
            }
        ]

    heard = "2026-03-02T02:00:00+00:00"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = DemoThread(tmp_path_factory.mktemp("peer-alarm")).start()
    yield d
    d.stop()


def tell(demo: DemoThread) -> None:
    """What ``checkpoint.peers.PeerSync`` says on the bus when a peer's state changes."""
    bus = demo.session.core.bus
    demo.loop.call_soon_threadsafe(bus.publish, {"type": "peers", "stale": []})


def test_a_stale_peer_is_a_card_on_the_live_page_said_once_and_gone_when_it_answers(demo, browser):
    core = demo.session.core
    since = core.clock.now().replace(microsecond=0).isoformat()
    peers = Peers(since)
    page = signed_in(browser, demo, "/guard?lang=en")
    page.wait_for_selector("#alarms")
    core.peers = peers
    tell(demo)
    page.wait_for_selector(CARD)
    card = page.locator(CARD).inner_text()
    assert "Device fault" in card and "compound gate gate-north unknown since" in card
    wait_for(lambda: any("gate-north" in w for w in page.evaluate(LIVE_WORDS)), 5)
    peers.stale_since = None
    tell(demo)
    wait_for(lambda: page.locator(CARD).count() == 0, 5)
    page.context.close()


def test_a_device_cards_done_sends_the_incident_the_stream_drew(demo, browser):
    """The card the stream draws carries which incident it is (when the gate went unknown),
    sent with its Done: a stale page's Done cannot close a later incident of the same gate;
    this page's closes its own."""
    core = demo.session.core
    since = core.clock.now().replace(microsecond=0).isoformat()
    page = signed_in(browser, demo, "/guard?lang=en")
    page.wait_for_selector("#alarms")
    core.peers = Peers(since)
    tell(demo)
    page.wait_for_selector(CARD)
    incident = page.locator(f"{CARD} .a-incident")
    assert incident.get_attribute("value") == f"device:peer:gate-north@{since}"
    assert not incident.is_disabled()
    page.locator(f"{CARD} button.ack").click()
    page.wait_for_url("**/guard?msg=ok.done*")
    wait_for(lambda: page.locator(CARD).count() == 0, 5)
    page.context.close()
