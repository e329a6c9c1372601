"""The outing quota's "one outing every two days" on the site's clock when the period's
start falls in the hour the spring change skips (``kiosk.days.days_before``): the engine's
history and the report's rule agree, and neither lets a household out early."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk.config.policy import QuotaConfig
from kiosk.days import days_before
from kiosk.history import PassageHistory
from kiosk.policy import quota_reached
from kiosk.stats import over_quota

BERLIN = ZoneInfo("Europe/Berlin")
QUOTA = QuotaConfig(enabled=True, exits=1, period_days=2)
#: Sunday 29 March 2026, 03:10 summer time: 40 minutes after the clocks went 02:00 -> 03:00.
OUT = datetime(2026, 3, 29, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("local", "denied"),
    [
        ("2026-03-31T02:20", True),  # "Sunday 02:20" never was: the period is from 03:00 on
        ("2026-03-31T03:05", True),  # two days after 03:05: Sunday's 03:10 is within
        ("2026-03-31T03:10", False),  # two days on the clock since the outing
        ("2026-03-31T01:50", True),  # "Sunday 01:50" was: the outing is within
    ],
)
def test_a_period_that_starts_in_the_skipped_hour_starts_when_the_clock_goes_on(local, denied):
    """Out on Sunday at 03:10, just after the spring change: on Tuesday at 02:20 the gate
    counted the period from 'Sunday 02:20' read as 03:20 summer time (the hour before the
    change's offset), so the outing at 03:10 fell outside it and the household went out again
    50 minutes early; the report said the same. A period starting at a time the clock skipped
    starts when the clock went on (03:00)."""
    history = PassageHistory()
    history.record("p1", "1-101", "out", "pass", OUT)
    now = datetime.fromisoformat(local).replace(tzinfo=BERLIN)
    assert quota_reached(QUOTA, history, "1-101", "resident", now, tz=BERLIN) is denied
    assert over_quota(now, [OUT], QUOTA, BERLIN) is denied


def test_days_before_is_wall_clock_arithmetic_and_a_skipped_time_is_the_changes_end():
    at = datetime(2026, 3, 31, 2, 20, tzinfo=BERLIN)
    assert days_before(at, 2) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 summer time
    ordinary = datetime(2026, 3, 30, 10, 0, tzinfo=BERLIN)
    assert days_before(ordinary, 2) == datetime(2026, 3, 28, 10, 0, tzinfo=BERLIN)  # 47 hours
    assert days_before(ordinary, 2).astimezone(UTC) == ordinary.astimezone(UTC) - timedelta(
        hours=47
    )
    autumn = datetime(2026, 10, 27, 2, 30, tzinfo=BERLIN)  # Sunday 02:30 came twice: the first
    assert days_before(autumn, 2).astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
