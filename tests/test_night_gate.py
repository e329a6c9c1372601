"""A gate staffed through the night: its hours, and what the guard coming on duty is told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

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


@pytest.mark.slow
@pytest.mark.parametrize(
    ("start", "steps"),
    [
        # 23:59:41 and 00:00:20 the next day: both inside the night's hours
        (datetime(2026, 3, 2, 23, 59, 40), [(1, "ok"), (40, "ok")]),
        # 07:59:41 inside, 08:00:30 past its end
        (datetime(2026, 3, 3, 7, 59, 40), [(1, "ok"), (50, "outside_hours")]),
    ],
    ids=["midnight", "eight"],
)
def test_the_running_gate_keeps_night_hours_across_midnight_and_closes_at_eight(start, steps):
    """Through the real engine (``kiosk replay``), closed hours 20:00-08:00: residents going
    out either side of midnight pass, one at 08:00:30 is turned away as the night ends."""
    from checkpoint.replay import parse_scenario, replay

    scenario = parse_scenario(
        {
            "name": "night",
            "start": start.replace(tzinfo=ZoneInfo("Asia/Shanghai")),
            "config": {"policy": {"hours": NIGHT | {"mode": "closed"}}},
            "steps": [
                {
                    "at_s": at_s,
                    "pass": {"household": "N-1", "holder": f"Li {at_s}"},
                    "body_c": 36.5,
                    "direction": "out",
                    "expect": {
                        "decision": "pass" if reason == "ok" else "deny",
                        "reasons": [reason],
                        "exact": True,
                    },
                }
                for at_s, reason in steps
            ],
        },
        "night.toml",
    )
    result = replay(scenario)
    assert result.failures == []
    assert result.expectations == 2


def test_an_open_card_survives_a_restart_after_the_hours_were_extended(data_dir, monkeypatch):
    """Staffed 08:30-17:30. At 18:00 a quarantined resident came home with nobody on duty.
    The office then staffed the gate round the clock and restarted it the next morning at
    07:00: the look-back was derived from the new hours (12 h, none unstaffed), from 19:00,
    and last evening's open card was gone, never closed. The look-back covers any hours."""
    from ui.guard.deps import Guard

    clock = FakeClock(start=datetime(2026, 2, 11, 10, 0, tzinfo=UTC))  # 18:00 in Shanghai
    day = parse_config({"policy": {"hours": {"enabled": True, "spans": ["08:30-17:30"]}}})
    core = make_core(data_dir, clock, monkeypatch, day)
    try:
        add_event(
            core, direction="in", decision="pass", household="3-201", holder="Wang",
            pass_id="c0ffee000004", flags=("quarantine",),
        )  # fmt: skip
        clock.advance(13 * 3600)  # 07:00 the next morning, restarted under the new hours
        close_core(core)
        core = make_core(data_dir, clock, monkeypatch, parse_config({}))  # hours off
        keys = [a.key for a in Guard.build(core).alarms.open_alarms([])]
        assert keys == ["event:1"]
    finally:
        close_core(core)
