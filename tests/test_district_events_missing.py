"""The district report's ``events_missing`` read with the collector's cadence (a review of
``heard_within`` shared with ``collector_down``): for a day that has ended the window hid the
day's last hours (an hourly collector's report of yesterday read at 00:30, the gate last heard
at 23:20, named none), and with ``--every 7d`` a gate silent for three days was complete
today."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from office.district import _heard_from

UTC_ZONE = ZoneInfo("UTC")


def _u(h: int, m: int = 0) -> datetime:
    return datetime(2026, 5, 1, tzinfo=UTC) + timedelta(hours=h, minutes=m)


def _missing(day: int, last: datetime, now: datetime, cadence: timedelta) -> dict:
    """The report of day ``day`` (0: 2026-05-01) read at ``now``, gate-0 last heard ``last``."""
    report = {
        "day": f"2026-05-{day + 1:02d}",
        "timezone": "UTC",
        "by_gate": [{"kiosk_id": "gate-0"}],
    }
    bounds = (_u(24 * day), _u(24 * day + 24))
    _heard_from(report, [("gate-0", last, now)], bounds, UTC_ZONE, cadence)
    return report


def _named(report: dict) -> list[str]:
    return [m["kiosk_id"] for m in report["events_missing"]]


def test_an_ended_day_misses_the_events_after_the_gates_last_contact_whatever_the_cadence():
    """An hourly collector: yesterday's report at 00:30, the gate last pulled at 23:20: its
    events of 23:20-24:00 are not held. A daily cron (``--every 1d``) at 02:00: yesterday's
    report at 01:00, the gate last heard yesterday 02:00."""
    hourly = _missing(0, _u(23, 20), _u(24, 30), timedelta(hours=1))
    assert hourly["day_ended"] is True and _named(hourly) == ["gate-0"]
    daily = _missing(0, _u(2), _u(25), timedelta(days=1))
    assert daily["day_ended"] is True and _named(daily) == ["gate-0"]
    assert _named(_missing(0, _u(24, 5), _u(24, 30), timedelta(hours=1))) == []


def test_today_a_gate_not_heard_from_since_the_day_began_is_missing_events():
    """``--every 7d``: today's report at 12:00 called a gate last heard three days ago
    complete, though none of today's events is held."""
    weekly = _missing(3, _u(12), _u(3 * 24 + 12), timedelta(days=7))
    assert weekly["day_ended"] is False and _named(weekly) == ["gate-0"]
    early = _missing(3, _u(3 * 24 - 1, 50), _u(3 * 24, 30), timedelta(hours=1))
    assert _named(early) == ["gate-0"]  # at 00:30, last heard before midnight


def test_today_a_gate_between_two_pulls_of_its_collector_is_not_missing_events():
    hourly = _missing(0, _u(11), _u(12, 10), timedelta(hours=1))
    assert _named(hourly) == [] and hourly["by_gate"][0]["events_complete"] is True
    assert _named(_missing(0, _u(10, 54), _u(12, 10), timedelta(hours=1))) == ["gate-0"]
