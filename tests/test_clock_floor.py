"""A kiosk restarted on a clock in the past decides by the newest time it knows has passed.

A Pi with no battery-backed clock, no network and its saved clock lost (a read-only root, a
new card with the old data partition) boots at 1970 or at its image's date, and never syncs.
Its event log knows better: the newest synchronised stamp has passed. ``kiosk.clock.FlooredClock``
reads no earlier than that (plus the monotonic time since) while the clock is not synchronised.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from checkpoint import app
from checkpoint.virtual import DirectPorts
from kiosk.clock import FakeClock, FlooredClock
from kiosk.config import parse_config
from kiosk.devices import CodeRead
from kiosk.passes import issue_pass, public_key_pem
from kiosk.store import EventDraft

MORNING = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, synchronised
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
def key(tmp_path):
    return trusted_key(tmp_path)


def trusted_key(tmp_path):
    """A new issuing key whose public half is in the data dir's trust folder."""
    private = Ed25519PrivateKey.generate()
    (tmp_path / "trust").mkdir()
    (tmp_path / "trust" / "office.pub").write_bytes(public_key_pem(private.public_key()))
    return private


def _config(**policy):
    return parse_config(
        {
            "site": {"kiosk_id": "gate-1", "timezone": "Asia/Shanghai"},
            "policy": {"mode": "pass_only", "hours": {"enabled": False}, **policy},
        }
    )


def _restart_on(monkeypatch, tmp_path, config, clock: FakeClock):
    """The daemon's core on the machine's clock, which reads ``clock``."""
    monkeypatch.setattr(app, "system_clock", lambda **kw: clock)
    return app.build_core(config, tmp_path)


def test_a_kiosk_restarted_on_a_1970_clock_reads_no_earlier_than_its_logs_newest_synced_time(
    tmp_path, monkeypatch, key
):
    config = _config()
    before = app.build_core(config, tmp_path, FakeClock(start=MORNING))
    before.store.append(EventDraft(direction="out", decision="pass", household="1-101"))
    before.close()

    unsynced = FakeClock(start=EPOCH, is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, unsynced)
    try:
        assert core.clock.now() >= MORNING
        unsynced.advance(3600)
        assert core.clock.now() >= MORNING + timedelta(hours=1)
        assert core.clock.synced() is False
    finally:
        core.close()


def _decide(core, base: FakeClock, key, direction="out", **issue) -> dict:
    """One passage through the core's engine, its requests answered in place (on the pass
    ``text``, or one issued by ``key`` as ``issue`` says)."""
    decisions: list[dict] = []
    engine = core.runner.engine
    engine.ports = DirectPorts(
        core.store,
        core.devices.gate,
        on_message=lambda m: decisions.append(m) if m["type"] == "decision" else None,
    )
    engine.ports.engine = engine
    text = (
        issue.pop("text", None)
        or issue_pass(key, issue.pop("household", "1-101"), "Li Wei", **issue)[0]
    )
    engine.on_code(CodeRead(text, "camera", core.clock.monotonic_ns()), direction)
    engine.tick()
    for _ in range(600):  # a minute for the passage to end and the engine to be idle again
        base.advance(0.1)
        engine.tick()
    [decision] = decisions
    return decision


def test_after_a_restart_on_a_clock_in_the_past_passes_quota_and_quarantine_still_hold(
    tmp_path, monkeypatch, key
):
    """The clock came back at the card image's date, ten days behind."""
    config = _config(quota={"enabled": True, "exits": 1, "period_days": 2})
    before = app.build_core(config, tmp_path, FakeClock(start=MORNING))
    before.store.append(EventDraft(direction="out", decision="pass", household="1-101"))
    # 5-505 is in home quarantine from yesterday for a fortnight.
    yesterday = MORNING - timedelta(days=1)
    before.lists.add_quarantine(
        "5-505", None, yesterday.date(), (MORNING + timedelta(days=13)).date(), "zhou"
    )
    before.close()

    image_date = FakeClock(start=MORNING - timedelta(days=10), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, image_date)
    core.runner._load_history()  # as the runner does when it starts
    try:
        # Issued yesterday, valid a month: not "not yet valid".
        fresh = _decide(core, image_date, key, household="2-202", days=30, now=yesterday)
        assert fresh["decision"] == "pass", fresh["reasons"]
        # A visitor's three-day pass that expired nine days ago: not valid again.
        twelve_days_ago = MORNING - timedelta(days=12)
        old = _decide(core, image_date, key, household="3-303", days=3, now=twelve_days_ago)
        assert old["reasons"] == ["pass_expired"]
        # 1-101 went out this morning: a second outing within two days is over the quota
        # (on a pass valid at either date).
        long_ago = MORNING - timedelta(days=20)
        again = _decide(core, image_date, key, household="1-101", days=60, now=long_ago)
        assert again["reasons"] == ["quota_exceeded"]
        # Quarantined since yesterday: not let out as if the quarantine had not begun.
        home = _decide(core, image_date, key, household="5-505", days=60, now=long_ago)
        assert "quarantined" in home["reasons"]
    finally:
        core.close()


def test_the_floor_rises_with_monotonic_time_and_yields_to_a_synchronised_clock():
    base = FakeClock(start=EPOCH, is_synced=False)
    clock = FlooredClock(base)
    assert clock.now() == EPOCH  # nothing known: the clock as it is
    clock.raise_floor(MORNING)
    base.advance(60)
    assert clock.now() == MORNING + timedelta(seconds=60)
    clock.raise_floor(MORNING)  # an older floor does not lower it
    assert clock.now() == MORNING + timedelta(seconds=60)
    base.set_wall(MORNING + timedelta(days=3))  # NTP: the Pi was off three days
    base.is_synced = True
    assert clock.now() == MORNING + timedelta(days=3)
    base.is_synced = False
    base.set_wall(EPOCH)  # set back by hand, unsynchronised: the last synced reading holds
    base.advance(5)
    assert clock.now() == MORNING + timedelta(days=3, seconds=5)
    base.is_synced = True  # a synchronised clock is believed, below any floor
    assert clock.now() == EPOCH + timedelta(seconds=5)
    with pytest.raises(ValueError):
        clock.raise_floor(datetime(2026, 3, 2))
