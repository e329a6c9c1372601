"""A session the roster lengthens stays one sign-in's (review of the roster-lengthened session).

* One sign-in slid past the 24 hours a session may last (``SESSION_CAP``, docs/screens.md):
  each request carried it to 24 hours from *then*, so a guard on back-to-back shifts, or a
  copy of the cookie replayed twice a day, stayed signed in for days. The cookie now carries
  its sign-in time (``iat``) and no lengthening goes past it + ``SESSION_CAP``; a cookie
  without it (from before) is never lengthened.
* Signing out set the session cookie back when the roster lengthened the session during
  that very request: the tablet kept a cookie of the signed-out session.
* A sign-out was held only until the end of the cookie it was made with: a copy of that
  cookie the roster had lengthened came back in after it. It is held until the latest end
  any copy can have (sign-in + ``SESSION_CAP``) and the browser's grace.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from guard_support import ADMIN_PW, BASE, make_app, signed_in
from test_shift_removed_session import _shift

from kiosk.roster import SESSION_CAP, Roster
from kiosk.store import StoreFault
from ui.auth import COOKIE, RESUME_TTL_S

from guard_support import console_fixtures  # isort: skip

#: 09:00 in Shanghai (the rig's site) on the console's clock.
clock, core, app, alice, admin = console_fixtures(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))

HOUR_S = 3600


def _status(tablet) -> int:
    return int(tablet.get("/guard", follow_redirects=False).status_code)


def _left_s(tablet) -> int:
    page = tablet.get("/guard", follow_redirects=False)
    assert page.status_code == 200, page.headers.get("location")
    return int(page.text.split('data-session-left-s="')[1].split('"')[0])


def test_back_to_back_shifts_never_carry_one_sign_in_past_24_hours(app, admin, clock):
    for day in (12, 13, 14):
        _shift(admin, f"2026-02-{day}T08:00", f"2026-02-{day}T20:00")
        _shift(admin, f"2026-02-{day}T20:00", f"2026-02-{day + 1}T08:00")
    with signed_in(app, "alice") as tablet:
        assert _left_s(tablet) == 24 * HOUR_S  # her stretch runs on: 24 hours at most
        clock.advance(12 * HOUR_S)  # 21:00, her night shift: still to 09:00 tomorrow
        assert _left_s(tablet) == 12 * HOUR_S
        clock.advance(11 * HOUR_S)  # 08:00 the next day: not carried on past 09:00
        assert _left_s(tablet) == HOUR_S
        clock.advance(HOUR_S)  # 24 hours after sign-in: over, the roster notwithstanding
        assert _status(tablet) == 303


def test_a_cookie_without_its_sign_in_time_is_never_lengthened(app, admin):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        sessions = tablet.app.state.guard.auth.sessions
        session = sessions.signed(tablet.cookies.get(COOKIE))
        assert session is not None and session.signed_in is not None
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")
        assert sessions.lengthened(session, session.expires) is not None  # with its iat
        old = sessions.signed(sessions._cookie(replace(session, signed_in=None)))
        assert old is not None and old.signed_in is None
        assert sessions.lengthened(old, old.expires) is None


def test_signing_out_as_the_roster_lengthens_the_session_leaves_no_cookie(app, admin):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")  # her next request lengthens it
        out = tablet.post(
            "/guard/logout",
            data={"csrf": tablet.csrf},
            headers={"Origin": BASE},
            follow_redirects=False,
        )
        assert out.status_code == 303
        set_here = [h for h in out.headers.get_list("set-cookie") if h.startswith(COOKIE)]
        assert len(set_here) == 1 and "Max-Age=0" in set_here[0]  # deleted, never set back
        assert not tablet.cookies.get(COOKIE)


def test_a_lengthened_copy_of_a_cookie_stays_out_after_the_sign_out(
    app, admin, clock, core, monkeypatch
):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        copy = TestClient(app, base_url=BASE)
        copy.cookies.set(COOKIE, tablet.cookies.get(COOKIE), domain="kiosk.test", path="/guard")
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")
        assert _left_s(copy) == 14 * HOUR_S  # the copy is handed the 23:00 cookie
        restarted = make_app(core)  # a restart: only the record knows the sign-out
        alice_again, copy_again = (TestClient(restarted, base_url=BASE) for _ in range(2))
        alice_again.cookies, copy_again.cookies = tablet.cookies, copy.cookies

        def fail(*args, **kwargs):
            raise StoreFault("store_fault", "roster read fails")

        with monkeypatch.context() as m:  # alice's own cookie (to 17:00) is not lengthened
            m.setattr(Roster, "stretch", fail)
            m.setattr(Roster, "barred", fail)
            clock.advance(HOUR_S)
            out = alice_again.post(
                "/guard/logout",
                data={"csrf": tablet.csrf},
                headers={"Origin": BASE},
                follow_redirects=False,
            )
        assert out.status_code == 303 and out.headers["location"] == "/guard/login"
        kept = restarted.state.guard.auth.sessions._revoked
        assert (
            min(kept.values()).timestamp()
            >= (datetime(2026, 2, 12, 1, 0, tzinfo=UTC) + SESSION_CAP).timestamp() + RESUME_TTL_S
        )
        clock.advance(7 * HOUR_S + 15 * 60)  # 17:15, past the end of the cookie signed out
        with signed_in(restarted, "root", ADMIN_PW) as other:  # a sign-out trims the list
            other.post(
                "/guard/logout",
                data={"csrf": other.csrf},
                headers={"Origin": BASE},
                follow_redirects=False,
            )
        assert _status(copy_again) == 303
        assert _status(TestClient(make_app(core), base_url=BASE, cookies=copy.cookies)) == 303
