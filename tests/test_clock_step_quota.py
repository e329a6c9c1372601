"""The outing quota across the NTP step that ends an unsynchronised start.

The Pi was off three days; it booted at its saved clock (three days behind), a resident of
1-101 went out, and ten minutes later NTP stepped the clock to real time. That outing is this
morning's, not three days old: a second one is over the quota ("one outing every two days").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support import exits_since
from test_engine import Rig

from kiosk.clock import FakeClock

MORNING = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
QUOTA = {"quota": {"enabled": True, "exits": 1, "period_days": 2}}


@pytest.fixture
def rig(tmp_path):
    clock = FakeClock(start=MORNING - timedelta(days=3), is_synced=False)
    r = Rig(clock, tmp_path, policy=QUOTA, site={"timezone": "Asia/Shanghai"})
    yield r
    r.close()


def _out(rig, household: str) -> dict:
    before = len(rig.decisions())
    rig.show(rig.pass_text(household=household), "out")
    rig.emulator.person_arrives(36.6)
    rig.run(8)
    rig.emulator.person_leaves()
    rig.run(8)
    [decision] = rig.decisions()[before:]
    return decision


def test_an_outing_before_the_ntp_step_still_counts_against_the_quota_after_it(rig):
    assert _out(rig, "1-101")["decision"] == "pass"
    rig.clock.advance(600)
    rig.clock.set_wall(MORNING + timedelta(minutes=10))  # NTP: the real time
    rig.clock.is_synced = True
    rig.clock.advance(600)
    again = _out(rig, "1-101")
    assert again["reasons"] == ["quota_exceeded"]


def test_a_restart_after_the_step_still_counts_the_outing_before_it(tmp_path):
    """The history is rebuilt from the log at start (``EngineRunner._load_history``): the
    outing stamped three days behind is dated by its boot's clock."""
    from checkpoint.app import build_core
    from kiosk.config import parse_config
    from kiosk.store import EventDraft

    config = parse_config({"site": {"timezone": "Asia/Shanghai"}, "policy": QUOTA})
    clock = FakeClock(start=MORNING - timedelta(days=3), is_synced=False)
    core = build_core(config, tmp_path, clock)
    try:
        core.store.append(EventDraft(direction="out", decision="pass", household="1-101"))
        clock.advance(600)
        clock.set_wall(MORNING + timedelta(minutes=10))
        clock.is_synced = True
        core.store.append(EventDraft(direction="in", decision="pass", household="2-202"))
    finally:
        core.close()
    restarted = build_core(config, tmp_path, clock)
    try:
        restarted.runner._load_history()  # as the runner does when it starts
        assert restarted.runner.history.exits_in_period("1-101", clock.now(), 2) == 1
    finally:
        restarted.close()


def test_redate_moves_exits_and_last_passages_by_the_monotonic_time_since():
    from kiosk.history import PassageHistory

    history = PassageHistory()
    behind = MORNING - timedelta(days=3)
    history.record("P1", "1-101", "out", "pass", behind, mono_ns=1_000_000_000)
    history.record("P2", "2-202", "in", "pass", behind, mono_ns=61_000_000_000)
    history.record("P3", "3-303", "out", "deny", behind, mono_ns=62_000_000_000)  # no passage
    assert history.undated == 2
    # NTP: 09:10 real time at monotonic 601 s.
    assert history.redate(MORNING + timedelta(minutes=10), 601_000_000_000) == 2
    assert history.undated == 0
    assert history.last_passage("P1", "out") == MORNING
    assert history.last_passage("P2", "in") == MORNING + timedelta(minutes=1)
    assert history.exits_in_period("1-101", MORNING + timedelta(hours=1), 2) == 1
    assert exits_since(history, "1-101", MORNING - timedelta(seconds=1)) == 1
    assert history.redate(MORNING + timedelta(hours=1), 4_000_000_000_000) == 0


def test_redate_puts_our_passage_back_above_an_older_peer_passage():
    """Before: a peer's passage, dated and older than ours in real time, was counted later
    than our undated 1970 one and ours went beneath it; redate moved ours to its real time
    but left it beneath, so a try within the passback window passed. The later is last."""
    from kiosk.history import PassageHistory

    history = PassageHistory()
    history.record("P", "H1", "out", "pass", datetime(1970, 1, 1, 0, 5, tzinfo=UTC),
                   mono_ns=300_000_000_000)  # fmt: skip
    ours = MORNING - timedelta(seconds=100)  # NTP: MORNING at monotonic 400 s
    history.record("P", "H1", "out", "pass", ours - timedelta(minutes=10), peer=True)
    history.redate(MORNING, 400_000_000_000)
    assert history.last_passage("P", "out") == ours
    assert exits_since(history, "H1", MORNING - timedelta(hours=1)) == 2
    # The peer's then taken back (its gate did not open): ours stays the last.
    history.forget("P", "H1", "out", ours - timedelta(minutes=10))
    assert history.last_passage("P", "out") == ours
