"""A guard's shift removed while it is under way ends the sign-in it gave: an admin takes a
guard off the roster and that guard could go on acting at the console for hours, the session
end given at sign-in standing. The next action is carried through the login page, which says
whose removal ended it; what the guard typed completes after signing in again."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from guard_support import BASE, GUARD_PW, console_fixtures, post, refused_with, signed_in

from kiosk.accounts import hash_password
from kiosk.roster import Roster, signed_on

BOB_PW = "bob-pw-123"

#: 09:00 in Shanghai (the rig's site) on the console's clock.
clock, core, app, alice, admin = console_fixtures(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))


def _shift(admin, starts: str, ends: str) -> None:
    posted = post(admin, "/guard/community/shifts", admin.csrf, guard="alice",
                  starts=starts, ends=ends)  # fmt: skip
    assert refused_with(admin, posted) is None, posted.text[:300]


def _remove(admin, shift) -> None:
    shown = {"starts_at": shift.starts_at.isoformat(), "ends_at": shift.ends_at.isoformat()}
    path = f"/guard/community/shifts/{shift.id}/remove"
    removed = post(admin, path, admin.csrf, guard=shift.guard, **shown)
    assert removed.status_code == 303 and refused_with(admin, removed) is None


def _browser_post(client, path: str, **data):
    return client.post(
        path,
        data={"csrf": client.csrf, **data},
        headers={"Origin": BASE, "Accept": "text/html,application/xhtml+xml"},
        follow_redirects=False,
    )


def _alices_shifts(core):
    gate = core.config.site.kiosk_id
    day = datetime(2026, 2, 11, tzinfo=UTC)
    return core.ledgers.roster.shifts(gate, day, day + timedelta(days=3))


RETURNEE = {"name": "Wang Fang", "household": "3-2-701", "origin": "Wuhan",
            "date_back": "2026-02-12", "days": "14"}  # fmt: skip


def test_a_guard_whose_shift_is_removed_is_signed_out_told_why_and_loses_nothing(app, admin, core):
    """Alice signed in on her 08:00-16:00 shift (her sign-in lasting to 17:00); at 09:00 the
    admin removed it. Her next action is refused and carried through the login page, which
    says her shift was removed by root at 09:00; signed in again (an admin rostered her
    again: ``removed_today``), it is offered to complete."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        assert 'data-session-left-s="28800"' in tablet.get("/guard").text  # to 17:00
        [shift] = _alices_shifts(core)
        _remove(admin, shift)
        page = tablet.get("/guard", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/guard/login")
        cut = _browser_post(tablet, "/guard/community/returnees", **RETURNEE)
        location = cut.headers["location"]
        assert cut.status_code == 303 and "&resume=" in location, location
        assert not [r for r in core.store.audits() if r["action"] == "returnee_register"]
        login = tablet.get(location + "&lang=en").text
        said = re.search(r'id="shift-removed">([^<]+)<', login).group(1)
        assert said == (
            "Your shift (2026-02-12 08:00–16:00) was removed by root at 09:00: your sign-in"
            " ended with it. To go on, ask an admin to roster you."
        ), said
        assert 'id="session-ended"' in login  # the action it cut off is kept
        assert "root" in tablet.get("/guard/login").text  # said on any page it lands on
        resume = html.unescape(re.search(r'name="resume" value="([^"]+)"', login).group(1))
        token = html.unescape(re.search(r'name="csrf" value="([^"]+)"', login).group(1))
        _shift(admin, "2026-02-12T09:00", "2026-02-12T12:00")  # an admin rosters her again
        again = tablet.post(
            "/guard/login",
            data={"name": "alice", "password": GUARD_PW, "csrf": token, "resume": resume},
            headers={"Origin": BASE},
            follow_redirects=False,
        )
        assert again.status_code == 200 and 'action="/guard/community/returnees"' in again.text
        assert "Wang Fang" in again.text  # as she typed it
        assert 'id="shift-removed"' not in tablet.get("/guard/login").text  # signed in anew


def test_the_live_stream_of_a_guard_whose_shift_was_removed_stops(app, admin, core):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        g = tablet.app.state.guard
        session = g.auth.sessions.read(tablet.cookies.get("kiosk_session"))
        assert session is not None and g.auth.still_holds(session) == session
        [shift] = _alices_shifts(core)
        _remove(admin, shift)
        assert g.auth.still_holds(session) is None


def test_removing_a_shift_the_sign_in_was_not_on_ends_nothing(app, admin, core):
    """Tomorrow's shift of hers removed, or a sign-in that no shift gave (an admin's, the
    configured hours): they go on as they were."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    _shift(admin, "2026-02-13T08:00", "2026-02-13T16:00")
    with signed_in(app, "alice") as tablet:
        today, tomorrow = _alices_shifts(core)
        _remove(admin, tomorrow)
        assert tablet.get("/guard", follow_redirects=False).status_code == 200
        _remove(admin, today)
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
    assert admin.get("/guard", follow_redirects=False).status_code == 200  # root's: no shift


def test_a_back_to_back_shift_removed_shortens_the_sign_in_to_the_shift_under_way(
    app, admin, core, clock
):
    """08:00-16:00 then 16:00-20:00: one sign-in to 21:00; the evening removed, she stays
    signed in to the end of the one under way (17:00, the handover's hour after it), on the
    page and on her stream alike. Before the afternoon of 2026-12-07 she was signed out at
    once, mid-shift (the removed shift was one of those the sign-in stood on)."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    _shift(admin, "2026-02-12T16:00", "2026-02-12T20:00")
    with signed_in(app, "alice") as tablet:
        assert 'data-session-left-s="43200"' in tablet.get("/guard").text  # to 21:00
        g = tablet.app.state.guard
        session = g.auth.sessions.read(tablet.cookies.get("kiosk_session"))
        _remove(admin, _alices_shifts(core)[1])
        page = tablet.get("/guard", follow_redirects=False)
        assert page.status_code == 200 and 'data-session-left-s="28800"' in page.text  # 17:00
        held = g.auth.still_holds(session)
        assert held is not None and held.expires == datetime(2026, 2, 12, 9, 0, tzinfo=UTC)
        clock.advance(8 * 3600)  # 17:00: the end of the shift under way's sign-in
        assert tablet.get("/guard", follow_redirects=False).status_code == 303


def test_a_swap_of_guards_ends_the_removed_guards_sign_in(app, admin, core):
    """Alice on 08:00-16:00; at 09:00 the admin swaps her for bob: removes her shift and
    rosters bob for the same hours. SQLite gave bob's shift her shift's id, and her session's
    mark (id, start, end) stood: she went on acting to 17:00 (rv30a). Bob's shift is not hers:
    her sign-in ends with her removal, and his is his."""
    core.accounts.add("bob", "guard", hash_password(BOB_PW, n=2**10), "root")
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        [shift] = _alices_shifts(core)
        _remove(admin, shift)
        posted = post(admin, "/guard/community/shifts", admin.csrf, guard="bob",
                      starts="2026-02-12T08:00", ends="2026-02-12T16:00")  # fmt: skip
        assert refused_with(admin, posted) is None
        [bobs] = _alices_shifts(core)
        assert (bobs.guard, bobs.id) == ("bob", shift.id)  # her shift's id, given to his
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        login = tablet.get("/guard/login?lang=en").text
        assert "was removed by root at 09:00" in html.unescape(login)
    bob, signed = _sign_in(app, "bob", BOB_PW)
    assert signed.status_code == 200 and 'data-session-left-s="28800"' in signed.text


def _sign_in(app, name: str = "alice", password: str = GUARD_PW):
    """A fresh tablet's sign-in through the form (in English): the client and the answer."""
    tablet = TestClient(app, base_url=BASE)
    page = tablet.get("/guard/login?lang=en").text
    token = html.unescape(re.search(r'name="csrf" value="([^"]+)"', page).group(1))
    signed = tablet.post(
        "/guard/login?lang=en",
        data={"name": name, "password": password, "csrf": token, "next": "/guard"},
        headers={"Origin": BASE},
    )
    return tablet, signed


def test_a_guard_whose_shift_was_removed_today_cannot_sign_back_in_without_an_admin(
    app, admin, core, clock
):
    """Her shift removed, she signed straight back in for ``web.session_hours`` (12 h), and
    from the afternoon's fix for the handover's hour, again every hour. A guard with no shift
    now whose shift at this gate was removed today is refused, told who removed it and when;
    an admin rostering her a shift now lets her in, and the next day she signs in as any."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        [shift] = _alices_shifts(core)
        _remove(admin, shift)
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
    for _ in range(2):  # not again an hour later either
        tablet, refused = _sign_in(app)
        said = html.unescape(re.search(r'class="flash err"[^>]*>([^<]+)<', refused.text)[1])
        assert refused.status_code == 403 and "kiosk_session" not in tablet.cookies
        assert said.removeprefix("✖ ").startswith(
            "Your shift (2026-02-12 08:00–16:00) was removed by root at 09:00: you cannot sign"
            " in again today until an admin rosters you"
        )
        clock.advance(3600)
    assert admin.get("/guard", follow_redirects=False).status_code == 200  # root's: as before
    _shift(admin, "2026-02-12T11:00", "2026-02-12T13:00")  # the admin rosters her again
    tablet, signed = _sign_in(app)
    assert signed.status_code == 200 and 'data-session-left-s="10800"' in signed.text  # 14:00
    clock.advance(24 * 3600)  # the next day, no shift: the normal sign-in
    tablet, signed = _sign_in(app)
    hours = int(core.config.web.session_hours * 3600)
    assert signed.status_code == 200 and f'data-session-left-s="{hours}"' in signed.text


def test_a_volunteer_off_the_roster_keeps_the_normal_sign_in(app, admin, core, clock):
    """From the afternoon's fix a guard with no shift on a day the roster had others' signed
    in for an hour only, and again every hour (a volunteer signed out hourly): the roster is
    no list of who may sign in. She signs in for ``web.session_hours``, warned before it ends
    (the page's banner, ``session_warn_s`` before)."""
    posted = post(admin, "/guard/community/shifts", admin.csrf, guard="root",
                  starts="2026-02-12T08:00", ends="2026-02-12T20:00")  # fmt: skip
    assert refused_with(admin, posted) is None
    tablet, signed = _sign_in(app)
    hours = int(core.config.web.session_hours * 3600)
    assert signed.status_code == 200 and f'data-session-left-s="{hours}"' in signed.text
    assert 'id="session-warning"' in signed.text and 'data-session-warn-s="600"' in signed.text
    clock.advance(3601)
    assert tablet.get("/guard", follow_redirects=False).status_code == 200  # still signed in


def test_a_day_without_shifts_keeps_the_configured_sign_in(app, core):
    with signed_in(app, "alice") as tablet:
        page = tablet.get("/guard").text
    assert f'data-session-left-s="{int(core.config.web.session_hours * 3600)}"' in page


def test_the_roster_says_which_shifts_a_sign_in_stands_on_and_who_removed_one(core, clock):
    """The core's two halves: the shifts a sign-in ends with (``signed_on``: the stretch that
    holds now, back-to-back ones with it, never a later one), and the first of them no longer
    as it was, with who removed it and when (``Roster.gone``); its id given to another shift
    is not the shift either."""
    rota: Roster = core.ledgers.roster
    gate, now = core.config.site.kiosk_id, clock.now()
    at = datetime(2026, 2, 12, tzinfo=UTC)
    later = rota.add_shift(
        gate, "alice", at + timedelta(hours=20), at + timedelta(hours=22), "root"
    )
    day = rota.add_shift(gate, "alice", at, at + timedelta(hours=8), "root")
    evening = rota.add_shift(
        gate, "alice", at + timedelta(hours=8), at + timedelta(hours=12), "root"
    )
    assert signed_on([day, evening, later], now) == [day, evening]
    marks = (day.mark, evening.mark)
    assert rota.gone(marks, "alice") is None and rota.gone((), "alice") is None
    clock.advance(600)
    rota.remove_shift(evening.id, "root")
    gone = rota.gone(marks, "alice")
    assert gone is not None and (gone.mark, gone.by) == (evening.mark, "root")
    assert gone.at is not None and abs(gone.at - clock.now()) < timedelta(seconds=1)
    reused = rota.add_shift(gate, "root", at + timedelta(hours=8), at + timedelta(hours=9), "root")
    assert reused.id == evening.id and rota.gone(marks, "alice") == gone  # another shift now


def test_a_shift_changed_on_the_roster_ends_the_sign_in_made_on_it(app, admin, core):
    """No console route edits a shift; one shortened on the roster all the same (its row
    changed: a future route, a repair by hand) ends the sign-in made on it as a removal does,
    the sign-in page saying it was changed (no removal to name)."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        [shift] = _alices_shifts(core)
        core.store.submit(
            lambda db: db.execute(
                "update roster_shifts set ends_at = ? where id = ?",
                ["2026-02-12T04:00:00.000000Z", shift.id],
            )
        )
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        login = tablet.get("/guard/login?lang=en").text
        said = re.search(r'id="shift-removed">([^<]+)<', login).group(1)
        assert said.startswith("Your shift (2026-02-12 08:00–16:00) was changed on the roster")


def test_the_live_stream_ended_by_the_roster_says_what_the_login_page_says(app, admin, core):
    """The live page's banner said "sign-in expired" when its stream ended a sign-in for a
    removed shift: the stream's ``expired`` now carries the login page's words (``reason``),
    which the page's banner shows; a plain end carries none (the page says its own)."""
    import asyncio

    from ui.guard.live import FeedStream

    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        g = tablet.app.state.guard
        session = g.auth.sessions.read(tablet.cookies.get("kiosk_session"))
        stream = FeedStream(g, session, "en", 0)
        assert asyncio.run(stream.expired()) is None
        [shift] = _alices_shifts(core)
        _remove(admin, shift)
        why = asyncio.run(stream.expired())
        login = tablet.get("/guard/login?lang=en").text
        said = html.unescape(re.search(r'id="shift-removed">([^<]+)<', login).group(1))
    assert why == said and "was removed by root at 09:00" in why
    roots = g.auth.sessions.read(admin.cookies.get("kiosk_session"))  # on no shift
    signed_out = FeedStream(g, roots, "en", 0)
    g.auth.sessions.revoke(roots)
    assert asyncio.run(signed_out.expired()) == ""
    guard_js = (Path(__file__).parents[1] / "ui/static/guard.js").read_text()
    assert "JSON.parse(e.data).reason" in guard_js  # the banner shows it
