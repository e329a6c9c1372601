"""A guard's session lasts to the end of the guard's stretch (the roster's shift, else the
staffed hours) and an hour past it for the handover, not ``web.session_hours`` from sign-in: a
night guard signed in at 19:50 was logged out at 07:50, in the night's last round."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from guard_support import close_core, login, make_core

from kiosk.config import parse_config

NIGHT = {"site": {"timezone": "UTC"}, "web": {"session_hours": 12}}


@contextmanager
def _core(data_dir, clock, monkeypatch, **extra):
    """The core as the daemon builds it, with the night's config and ``extra``; closed after."""
    core = make_core(data_dir, clock, monkeypatch, parse_config({**NIGHT, **extra}))
    try:
        yield core
    finally:
        close_core(core)


@pytest.fixture
def clock():
    from kiosk.clock import FakeClock

    return FakeClock(start=datetime(2026, 3, 2, 19, 50, tzinfo=UTC))


def _alices_shift(core, start: datetime, *, hours: int) -> None:
    """The roster puts alice (``login``'s guard) on the gate from ``start`` for ``hours``."""
    core.ledgers.roster.add_shift(
        core.config.site.kiosk_id, "alice", start, start + timedelta(hours=hours), "root"
    )


def _signed_in(client) -> bool:
    return client.get("/guard", follow_redirects=False).status_code == 200


def _client(core):
    from fastapi.testclient import TestClient
    from guard_support import BASE, make_app

    return TestClient(make_app(core), base_url=BASE)


def test_a_night_guard_signed_in_at_1950_stays_through_the_0800_handover(
    data_dir, clock, monkeypatch
):
    hours = {"enabled": True, "open_at": "20:00", "close_at": "08:00"}
    with (
        _core(data_dir, clock, monkeypatch, policy={"hours": hours}) as core,
        _client(core) as client,
    ):
        login(client)
        clock.advance(12 * 3600 + 5 * 60)  # 07:55, the last round
        assert _signed_in(client)
        clock.advance(65 * 60 - 1)  # 08:59:59: handing over
        assert _signed_in(client)
        clock.advance(2)  # an hour after the shift: out
        assert not _signed_in(client)


def test_hours_that_only_close_the_gate_leave_the_session_to_session_hours(
    data_dir, clock, monkeypatch
):
    hours = {"enabled": True, "mode": "closed", "open_at": "20:00", "close_at": "08:00"}
    with (
        _core(data_dir, clock, monkeypatch, policy={"hours": hours}) as core,
        _client(core) as client,
    ):
        login(client)
        assert 'data-session-left-s="43200"' in client.get("/guard").text


def test_a_rostered_guard_stays_to_the_end_of_the_shift_and_no_longer(data_dir, clock, monkeypatch):
    with _core(data_dir, clock, monkeypatch) as core:
        _alices_shift(core, datetime(2026, 3, 2, 20, 0, tzinfo=UTC), hours=12)
        with _client(core) as client:
            login(client)
            page = client.get("/guard").text
            assert f'data-session-left-s="{int(13 * 3600 + 10 * 60)}"' in page
            clock.advance(13 * 3600 + 10 * 60 + 1)
            assert not _signed_in(client)


def test_a_day_shift_ends_the_session_with_it_not_twelve_hours_later(data_dir, clock, monkeypatch):
    with _core(data_dir, clock, monkeypatch) as core:
        _alices_shift(core, datetime(2026, 3, 2, 19, 0, tzinfo=UTC), hours=2)
        with _client(core) as client:
            login(client)
            clock.advance(2 * 3600 + 10 * 60 - 1)  # 21:59:59: an hour after the shift
            assert _signed_in(client)
            clock.advance(2)
            assert not _signed_in(client)


def test_without_a_roster_or_hours_the_session_lasts_session_hours(data_dir, clock, monkeypatch):
    with _core(data_dir, clock, monkeypatch) as core, _client(core) as client:
        login(client)
        clock.advance(12 * 3600 - 1)
        assert _signed_in(client)
        clock.advance(2)
        assert not _signed_in(client)


def test_day_and_night_spans_are_two_shifts_not_one_session_round_the_clock():
    """Spans 08:00-20:00 and 20:00-08:00 are a day guard and a night guard: a night guard
    signing in at 19:50 is signed in until the morning's handover, not for 24 h (the spans
    joined into one stretch round the clock, and every session ran to the cap)."""
    from datetime import time
    from zoneinfo import ZoneInfo

    from kiosk.roster import HANDOVER_GRACE, session_end, staffed_stretches

    tz = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 3, 2, 19, 50, tzinfo=tz)
    spans = [(time(8), time(20)), (time(20), time(8))]
    staffed = staffed_stretches(spans, tz, now)
    assert session_end([], staffed, now) == datetime(2026, 3, 3, 8, tzinfo=tz) + HANDOVER_GRACE
    day = datetime(2026, 3, 3, 7, 55, tzinfo=tz)
    assert (
        session_end([], staffed_stretches(spans, tz, day), day)
        == datetime(2026, 3, 3, 20, tzinfo=tz) + HANDOVER_GRACE
    )


def test_a_shift_ending_in_the_hour_the_spring_change_skips_ends_when_the_clock_went_on():
    """Berlin, 2026-03-29 (02:00 CET became 03:00 CEST): a night 22:00-02:30 was placed as
    ending at 03:30 CEST, half an hour of staffing nobody was rostered for. It ends at 03:00
    CEST, when the clock went on (``kiosk.days.local_at``)."""
    from datetime import time
    from zoneinfo import ZoneInfo

    from kiosk.roster import staffed_stretches

    tz = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 3, 29, 1, 0, tzinfo=tz)
    stretches = staffed_stretches([(time(22), time(2, 30))], tz, now)
    assert (datetime(2026, 3, 28, 22, tzinfo=tz), datetime(2026, 3, 29, 3, tzinfo=tz)) in stretches


def test_a_night_written_as_two_spans_at_midnight_is_one_shift():
    """20:00-00:00 and 00:00-08:00 (hours as written before a span could cross midnight) are
    one night: the session does not end at 01:00."""
    from datetime import time
    from zoneinfo import ZoneInfo

    from kiosk.roster import HANDOVER_GRACE, session_end, staffed_stretches

    tz = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 3, 2, 19, 50, tzinfo=tz)
    spans = [(time(20), time(0)), (time(0), time(8))]
    staffed = staffed_stretches(spans, tz, now)
    assert session_end([], staffed, now) == datetime(2026, 3, 3, 8, tzinfo=tz) + HANDOVER_GRACE


def test_a_rostered_guards_shifts_back_to_back_end_the_session_at_the_cap_not_never():
    from kiosk.roster import SESSION_CAP, session_end

    now = datetime(2026, 3, 2, 19, 50, tzinfo=UTC)
    shifts = [(now + timedelta(hours=h), now + timedelta(hours=h + 12)) for h in (0, 12, 24)]
    assert session_end(shifts, [], now) == now + SESSION_CAP
