"""The quota's period lengthened (one outing every 2 days -> one a week) on a restart: the
compound's other gates' outings 3-7 days back still count here. ``peer_passages`` was trimmed
at every merge to the period in force and a peer's cursor is past those rows, so they were
never fetched again: the household went out again at this gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from checkpoint.app import build_core
from checkpoint.peers import PeerSync
from kiosk.clock import FakeClock
from kiosk.config import parse_config
from kiosk.history import PassageHistory
from kiosk.peers import LEDGER_HORIZON, CheckedPage, PeerRow, history_horizon, load_peer_rows
from kiosk.store import format_ts

NOW = datetime(2026, 2, 10, 2, 0, tzinfo=UTC)
DAY = 86400


def _config(period_days: int):
    quota = {"enabled": True, "exits": 1, "period_days": period_days}
    peer = {"url": "https://gate-north.lan", "kiosk_id": "gate-north", "token_env": "PEER_TOKEN"}
    return parse_config(
        {
            "site": {"kiosk_id": "gate-south"},
            "policy": {"quota": quota},
            "compound": {"peers": [peer]},
        }
    )


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("no route to host", request=request)


@pytest.mark.slow  # two cores built: over the unit CPU budget
def test_a_period_lengthened_on_a_restart_counts_the_other_gates_older_outings(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("PEER_TOKEN", "kt_00000000_" + "a" * 43)
    clock = FakeClock(start=NOW)
    config = _config(2)
    core = build_core(config, tmp_path / "south", clock)
    sync = PeerSync(
        core, config.compound, client=httpx.Client(transport=httpx.MockTransport(_refused))
    )
    try:
        ledger = sync.ledger
        row = PeerRow("gate-north", 1, "p-1", "A-101", "out", "pass", format_ts(NOW), False)
        ledger.merge("http://north", "gate-north", CheckedPage([row], 1, 1, 0), clock.now())
        for _ in range(4):  # four days of polls, nothing new from the north gate
            clock.advance(DAY)
            ledger.merge("http://north", "gate-north", CheckedPage([], 1, 1, 0), clock.now())
        assert ledger.held() == {"gate-north": 1}
    finally:
        sync.stop(0)
        core.close()
    longer = _config(7)
    core = build_core(longer, tmp_path / "south", clock)
    try:
        history = PassageHistory(horizon=history_horizon(7))
        since = clock.now() - timedelta(days=7)
        assert load_peer_rows(core.store.reader(), history, since) == 1
        assert history.exits_in_period("A-101", clock.now(), 7) == 1
    finally:
        core.close()


def test_the_ledger_still_drops_what_no_period_needs(tmp_path, monkeypatch):
    monkeypatch.setenv("PEER_TOKEN", "kt_00000000_" + "a" * 43)
    clock = FakeClock(start=NOW)
    config = _config(30)  # the longest a config may set
    assert history_horizon(config.policy.quota.period_days) <= LEDGER_HORIZON
    core = build_core(config, tmp_path / "south", clock)
    sync = PeerSync(
        core, config.compound, client=httpx.Client(transport=httpx.MockTransport(_refused))
    )
    try:
        row = PeerRow("gate-north", 1, "p-1", "A-101", "out", "pass", format_ts(NOW), False)
        sync.ledger.merge("http://north", "gate-north", CheckedPage([row], 1, 1, 0), NOW)
        clock.advance(LEDGER_HORIZON.total_seconds() + DAY)
        sync.ledger.merge("http://north", "gate-north", CheckedPage([], 1, 1, 0), clock.now())
        assert sync.ledger.held() == {}
    finally:
        sync.stop(0)
        core.close()
