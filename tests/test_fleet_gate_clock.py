"""The office's collector and a gate whose clock is not synchronised (a Pi has no RTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from pgfixture import Network
from support import kiosk_api

from kiosk.clock import FakeClock
from kiosk.store import EventDraft
from office.gatereports import collect_reports
from office.pull import PullError

REAL = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # 09:00 Shanghai on 3 March, the office's now


class Kept:
    """A ``ReportTarget`` that keeps what the collector writes."""

    def __init__(self):
        self.rows: dict[date, bool] = {}

    def write_gate_report(self, kiosk_id, day, timezone, ledgers, final):
        self.rows[day] = final

    def final_report_days(self, kiosk_id, since):
        return {d for d, final in self.rows.items() if final and d >= since}


@pytest.fixture
def gate_at(tmp_path):
    made = []

    def make(clock):
        """The gate, installed (its log begun: its token made) a week before ``clock``'s now:
        none of the 7 days the office asks for is before its log."""
        now = clock.now()
        clock.set_wall(now - timedelta(days=7))
        core = kiosk_api(tmp_path / "gate.db", "gate-1", clock, ledgers=True,
                         scopes=("logs:read", "stats:read"))  # fmt: skip
        clock.set_wall(now)
        made.append(core)
        return core

    yield make
    for core in made:
        core.store.close()


def _collect(gate, kept, now):
    client = httpx.Client(transport=httpx.MockTransport(Network(gate)))
    return collect_reports(client, kept, "http://gate-1", "gate-1", gate.token, now=now)


@pytest.mark.parametrize(
    "gate_now", [datetime(1970, 1, 1, 0, 5, tzinfo=UTC), REAL - timedelta(days=3)]
)
def test_a_gate_on_another_day_than_the_office_has_no_report_kept(gate_at, gate_now):
    """A gate back at 1970 (or three days behind) said "today" is its day: the office kept
    its figures under that day and marked the six days before it final, wrong days for ever.
    The office's clock says which day it is: a gate on another day has nothing kept."""
    gate = gate_at(FakeClock(start=gate_now, is_synced=False))
    kept = Kept()
    with pytest.raises(PullError, match="not synchronised"):
        _collect(gate, kept, REAL)
    assert kept.rows == {}


@pytest.mark.slow
def test_a_day_with_events_dated_only_by_an_unsynced_clock_is_not_final(gate_at):
    """Yesterday's events were stamped by a clock never synchronised (``clock.unsynced`` in
    the gate's report): they may yet be dated elsewhere, so the day is kept but asked again,
    not stored final; today's day and a synchronised gate are as before."""
    clock = FakeClock(start=REAL - timedelta(days=1), is_synced=False)
    gate = gate_at(clock)
    gate.store.append(EventDraft(direction="in", decision="pass", household="3-201"))
    clock.advance(86400)
    kept = Kept()
    assert _collect(gate, kept, REAL) == date(2026, 3, 3)
    assert kept.rows[date(2026, 3, 3)] is False
    assert kept.rows[date(2026, 3, 2)] is False  # was stored final
    assert kept.rows[date(2026, 2, 28)] is True  # nothing unsynced that day


def test_without_a_synchronised_office_clock_the_gates_day_is_taken(gate_at):
    gate = gate_at(FakeClock(start=REAL))
    kept = Kept()
    assert _collect(gate, kept, None) == date(2026, 3, 3)
    assert len(kept.rows) == 7 and sum(kept.rows.values()) == 6


@pytest.mark.parametrize(
    ("office_now", "gate_now"),
    [
        # Asked at 23:59:59.9 in Shanghai, answered at 00:00:00.2: the gate's today is the 3rd.
        (
            datetime(2026, 3, 2, 15, 59, 59, 900000, tzinfo=UTC),
            datetime(2026, 3, 2, 16, 0, 0, 200000, tzinfo=UTC),
        ),
        # A synchronised gate's clock a few seconds behind the office's, just after midnight.
        (datetime(2026, 3, 2, 16, 0, 1, tzinfo=UTC), datetime(2026, 3, 2, 15, 59, 58, tzinfo=UTC)),
    ],
)
def test_a_gate_asked_across_its_midnight_has_its_report_kept(gate_at, office_now, gate_now):
    """The office's ``now`` is taken before the gate answers, and two synchronised clocks
    differ by a little: a gate answering about midnight said the next (or the last) day and
    the office refused it as a clock not synchronised, a report error every night. The gate's
    day is taken when it is the office's day at any moment of the exchange, give or take
    ``DAY_EDGE_TOLERANCE``; further off it is still refused (test above)."""
    gate = gate_at(FakeClock(start=gate_now))
    kept = Kept()
    day = gate_now.astimezone(ZoneInfo("Asia/Shanghai")).date()
    assert _collect(gate, kept, office_now) == day
    assert day in kept.rows and len(kept.rows) == 7
