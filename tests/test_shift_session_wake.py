"""A guard's session the roster lengthens, at its edges (session 32, bc069609).

* A tablet asleep more than ``RESUME_TTL_S`` past the end the session's cookie gave it woke
  signed out though its guard was on a back-to-back shift: the cookie was lengthened only
  within ten minutes of that end, and the browser dropped it then. Within the hard cap
  (sign-in + ``SESSION_CAP``) and on duty, waking lengthens it; off duty it is over.
* A roster read that failed (the database locked) counted as the roster asked: a shift added
  just before was not seen until near the session's end. The next request asks again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from guard_support import signed_in
from test_shift_removed_session import _shift

from kiosk.roster import SESSION_CAP, Roster
from kiosk.store import StoreFault
from ui.auth import COOKIE, RESUME_TTL_S

from guard_support import console_fixtures  # isort: skip

#: 09:00 in Shanghai (the rig's site) on the console's clock.
clock, core, app, alice, admin = console_fixtures(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))

HOUR_S = 3600


def _page(tablet):
    return tablet.get("/guard", follow_redirects=False)


def _left_s(tablet) -> int:
    page = _page(tablet)
    assert page.status_code == 200, page.headers.get("location")
    return int(page.text.split('data-session-left-s="')[1].split('"')[0])


def test_a_tablet_asleep_past_the_old_end_wakes_on_the_back_to_back_shift(app, admin, clock):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")
        clock.advance(9 * HOUR_S)  # 18:00: asleep since 09:00, an hour past 17:00
        assert _left_s(tablet) == 5 * HOUR_S  # to 23:00: 22:00 and the handover's hour


def test_a_tablet_asleep_past_the_stretch_wakes_signed_out(app, admin, clock):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")
        clock.advance(14 * HOUR_S + 60)  # 23:01: her stretch and its handover hour are over
        assert _page(tablet).status_code == 303


def test_the_browser_keeps_the_cookie_to_the_hard_cap(app, admin, clock):
    """The cookie's Max-Age reaches sign-in + ``SESSION_CAP`` (and the grace): the browser
    still sends it when the tablet wakes; the server judges its end as before."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")
        page = _page(tablet)  # lengthened: the cookie set again
        cookie = [h for h in page.headers.get_list("set-cookie") if h.startswith(COOKIE)]
        assert len(cookie) == 1
        max_age = int(cookie[0].split("Max-Age=")[1].split(";")[0])
        assert max_age == SESSION_CAP.total_seconds() + RESUME_TTL_S


def test_a_failed_roster_read_is_asked_again_at_the_next_request(app, admin, clock, monkeypatch):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        assert _left_s(tablet) == 8 * HOUR_S  # to 17:00
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")

        def locked(*args, **kwargs):
            raise StoreFault("store_fault", "database is locked")

        with monkeypatch.context() as m:
            m.setattr(Roster, "stretch", locked)
            assert _left_s(tablet) == 8 * HOUR_S  # the read failed: as it was
        assert _left_s(tablet) == 14 * HOUR_S  # asked again: to 23:00
