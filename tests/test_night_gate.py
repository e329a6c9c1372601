"""A gate staffed through the night: its hours, and what the guard coming on duty is told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from guard_support import add_event, close_core, make_core

from kiosk.clock import FakeClock
from kiosk.config import parse_config

NIGHT = {"enabled": True, "open_at": "20:00", "close_at": "08:00"}


@pytest.mark.parametrize(
    ("hours", "gap"),
    [
        ({}, timedelta(0)),  # no hours: always someone to tell
        ({"enabled": True}, timedelta(hours=15)),  # 17:30 to 08:30
        (NIGHT, timedelta(hours=12)),  # 08:00 to 20:00
        ({"enabled": True, "spans": ["08:30-17:30", "20:00-08:00"]}, timedelta(hours=2.5)),
        ({"enabled": True, "spans": ["20:00-02:00", "22:00-06:00"]}, timedelta(hours=14)),
    ],
)
def test_the_longest_time_nobody_is_on_duty(hours, gap):
    assert parse_config({"policy": {"hours": hours}}).policy.hours.longest_unstaffed() == gap


def test_a_quarantine_return_in_the_day_reaches_the_night_guard_after_a_restart(
    data_dir, monkeypatch
):
    """Staffed 20:00-08:00. At 08:05 a resident of a quarantined household came home and
    passed, flagged, with nobody on duty; the guard must hear of it at 20:00. The daemon
    restarted at 20:10 (an update, a power cut): the console's alarms are derived again from
    the last 12 hours of the log, from 08:10, and the return was never shown."""
    from ui.guard.deps import Guard

    clock = FakeClock(start=datetime(2026, 3, 2, 0, 5, tzinfo=UTC))  # 08:05 in Shanghai
    config = parse_config({"policy": {"hours": NIGHT}})
    core = make_core(data_dir, clock, monkeypatch, config)
    try:
        add_event(
            core, direction="in", decision="pass", household="1-101", holder="Li Wei",
            pass_id="c0ffee000003", flags=("quarantine",),
        )  # fmt: skip
        clock.advance(12 * 3600 + 300)  # 20:10: the night guard is on; the daemon restarted
        keys = [a.key for a in Guard.build(core).alarms.open_alarms([])]
        assert keys == ["event:1"]
    finally:
        close_core(core)
