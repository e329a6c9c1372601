"""A bar of the roster holds, and only where it should, however the gate is doing: the clock
saying "not synchronised" while it reads AHEAD of the time known to have passed (a fast
RTC, a hand mis-set that fake-hwclock saved), a removal's row that cannot be read, a roster
fault just after this gate's admin rostered or removed a shift."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from guard_support import console_fixtures, signed_in
from test_shift_removed_bars_hold import (
    _damaged,
    _manual_pass,
    _manual_passes,
    _refusal,
    _remove,
    _shift,
    _shifts,
)
from test_shift_removed_session import _sign_in

from kiosk.clock import FakeClock, FlooredClock

#: 09:00 in Shanghai (the rig's site).
START = datetime(2026, 2, 12, 1, 0, tzinfo=UTC)
_, core, app, alice, admin = console_fixtures(START)


@pytest.fixture
def fake() -> FakeClock:
    return FakeClock(start=START)


@pytest.fixture
def clock(fake: FakeClock) -> FlooredClock:
    """The core's clock as the daemon builds it: floored while not synchronised."""
    return FlooredClock(fake)


def _fast(fake: FakeClock, hours: float) -> None:
    """The kernel says "not synchronised" and the clock reads ``hours`` ahead; 60 s pass."""
    fake.is_synced = False
    fake.advance(60)
    fake.set_wall(fake.now() + timedelta(hours=hours))


def test_a_removed_guard_stays_out_on_a_clock_reading_ahead_unsynchronised(
    app, admin, core, clock, fake
):
    """Alice 08:00-16:00, removed at 09:00: barred to 17:00. At 09:01 the clock, not
    synchronised, reads 18:01: her bar was judged at that reading, over; her console came
    back, her manual pass was recorded, a fresh sign-in let in. Judged at the earliest the
    time can be (09:01), she stays out."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        _remove(admin, _shifts(core)[0])
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        _fast(fake, 9)
        assert clock.now() - clock.floor() > timedelta(hours=8)
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        assert _manual_pass(tablet).headers["location"].startswith("/guard/login")
    assert _manual_passes(core) == 0
    fresh, refused = _sign_in(app)
    assert refused.status_code == 403 and "kiosk_session" not in fresh.cookies
    assert "was removed by root" in _refusal(refused)


def test_a_rostered_guard_is_not_locked_out_by_a_later_removal_on_a_fast_clock(
    app, admin, core, fake
):
    """Alice 08:00-12:00, her 14:00-16:00 removed. At 09:01 the clock, not synchronised,
    reads 14:31: the afternoon's bar was taken as in force, her console closed and her
    sign-in refused during her own morning shift. She keeps the gate."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T12:00")
    _shift(admin, "2026-02-12T14:00", "2026-02-12T16:00")
    _remove(admin, [s for s in _shifts(core) if s.starts_at.hour == 6][0])  # 14:00 site
    with signed_in(app, "alice") as tablet:
        assert tablet.get("/guard", follow_redirects=False).status_code == 200
        _fast(fake, 5.5)
        assert tablet.get("/guard", follow_redirects=False).status_code == 200
    fresh, signed = _sign_in(app)
    assert signed.status_code == 200 and "kiosk_session" in fresh.cookies


def test_a_kept_bar_holds_through_a_fault_on_a_clock_reading_ahead(
    app, admin, core, fake, monkeypatch
):
    """Alice removed at 09:00 (barred to 17:00), then the roster cannot be read and the
    clock, not synchronised, reads 18:01 at 09:01: the bar kept was judged over at that
    reading, and her sign-in let in. It stands."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        _remove(admin, _shifts(core)[0])
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
    monkeypatch.setattr(core.ledgers.roster, "barred", _damaged)
    _fast(fake, 9)
    fresh, refused = _sign_in(app)
    assert refused.status_code == 403 and "kiosk_session" not in fresh.cookies


def test_a_removal_row_that_cannot_be_read_turns_off_no_other_bar(admin, core, caplog):
    """Tomorrow's shift of Alice's removed, its audit row edited by hand (times no times);
    today's shift of hers removed at 09:00: every read of her bars failed on the edited
    row, so today's removal never barred her. The row is skipped (logged once, by its shift
    id, no name), today's removal bars her."""
    from ui.app import create_app

    app = create_app(core)
    _shift(admin, "2026-02-13T08:00", "2026-02-13T16:00")
    _remove(admin, _shifts(core)[0])
    edit = "update audit set detail = json_set(detail, '$.starts_at', '', '$.ends_at', 'zz')"
    core.store.submit(lambda db: db.execute(edit + " where action = 'roster.shift_remove'"))
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    caplog.set_level(logging.WARNING, logger="kiosk.roster")
    with signed_in(app, "alice", raise_server_exceptions=False) as tablet:
        assert tablet.get("/guard", follow_redirects=False).status_code == 200
        _remove(admin, [s for s in _shifts(core) if s.starts_at.day == 12][0])
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        assert _manual_pass(tablet).headers["location"].startswith("/guard/login")
    assert _manual_passes(core) == 0
    fresh, refused = _sign_in(app)
    assert refused.status_code == 403 and "kiosk_session" not in fresh.cookies
    skipped = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(skipped) == 1 and "alice" not in skipped[0]


def test_a_guard_rostered_again_here_signs_in_during_a_fault_just_after(
    app, admin, core, fake, monkeypatch
):
    """Alice removed at 09:00 (her bar kept), rostered again at 09:10 by this gate's admin;
    the roster then cannot be read: her sign-in was refused on the bar kept, told an admin
    rostering a shift lets her in. The shift added drops it: she signs in."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        _remove(admin, _shifts(core)[0])
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
    fake.advance(600)
    _shift(admin, "2026-02-12T09:10", "2026-02-12T16:00")
    monkeypatch.setattr(core.ledgers.roster, "barred", _damaged)
    fresh, signed = _sign_in(app)
    assert signed.status_code == 200 and "kiosk_session" in fresh.cookies


def test_a_shift_added_another_day_keeps_the_bar_through_a_fault(app, admin, core, monkeypatch):
    """Alice removed at 09:00 (barred to 17:00); a shift of hers added for tomorrow holds
    none of today's bar: through a roster fault just after, she stays out."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        _remove(admin, _shifts(core)[0])
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
    _shift(admin, "2026-02-13T08:00", "2026-02-13T16:00")
    monkeypatch.setattr(core.ledgers.roster, "barred", _damaged)
    fresh, refused = _sign_in(app)
    assert refused.status_code == 403 and "kiosk_session" not in fresh.cookies


def test_a_shift_removed_here_during_a_fault_ends_the_session_it_lengthened(
    app, admin, core, fake, monkeypatch
):
    """Alice 08:00-12:00 signed in; 12:00-16:00 added back to back (her session lengthened
    to 17:00), then removed by this gate's admin while the roster cannot be read: the
    removal was never seen, she acted at 13:30, past her own shift's handover hour. The
    removal written here is kept as her bar: she is out."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T12:00")
    with signed_in(app, "alice") as tablet:
        _shift(admin, "2026-02-12T12:00", "2026-02-12T16:00")
        assert tablet.get("/guard", follow_redirects=False).status_code == 200
        monkeypatch.setattr(core.ledgers.roster, "barred", _damaged)
        _remove(admin, [s for s in _shifts(core) if s.starts_at.hour == 4][0])  # 12:00
        fake.advance(4 * 3600 + 1800)  # 13:30
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        assert _manual_pass(tablet).headers["location"].startswith("/guard/login")
    assert _manual_passes(core) == 0
