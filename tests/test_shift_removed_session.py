"""A guard's shift removed while it is under way ends the sign-in it gave: an admin takes a
guard off the roster and that guard could go on acting at the console for hours, the session
end given at sign-in standing. The next action is carried through the login page, which says
whose removal ended it; what the guard typed completes after signing in again."""

from __future__ import annotations

import asyncio
import html
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from guard_support import (
    ADMIN_PW,
    BASE,
    GUARD_PW,
    console_fixtures,
    post,
    refused_with,
    signed_in,
)
from starlette.requests import Request

from kiosk.accounts import hash_password
from kiosk.roster import Roster
from kiosk.store import StoreFault
from ui.guard.live import FeedStream

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
    again: ``barred``), it is offered to complete."""
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
        stream = FeedStream(g, session, "en", 0)
        assert asyncio.run(stream.expired()) is None  # shortened to 17:00
        clock.advance(8 * 3600)  # 17:00: the end of the shift under way's sign-in
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        # The stream's banner says why, as the sign-in page does (it said nothing: the
        # session it held, shortened to 17:00, was over and no longer barred).
        assert "(2026-02-12 16:00–20:00) was removed by root" in asyncio.run(stream.expired())


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


def test_a_guard_whose_shift_was_removed_cannot_sign_back_in_during_it_without_an_admin(
    app, admin, core, clock
):
    """Her shift removed, she signed straight back in for ``web.session_hours`` (12 h), and
    from the afternoon's fix for the handover's hour, again every hour. A guard whose shift
    at this gate was removed is refused during it and its handover's hour, told who removed
    it and when; an admin rostering her a shift now lets her in, and the next day she signs
    in as any."""
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
            " in until 17:00 unless an admin rosters you"
        )
        clock.advance(3600)
    assert admin.get("/guard", follow_redirects=False).status_code == 200  # root's: as before
    _shift(admin, "2026-02-12T11:00", "2026-02-12T13:00")  # the admin rosters her again
    tablet, signed = _sign_in(app)
    assert signed.status_code == 200 and 'data-session-left-s="10800"' in signed.text  # 14:00
    clock.advance(6 * 3600)  # 17:00: her removed shift's handover hour over, no shift
    tablet, signed = _sign_in(app)
    hours = int(core.config.web.session_hours * 3600)
    assert signed.status_code == 200 and f'data-session-left-s="{hours}"' in signed.text
    clock.advance(18 * 3600)  # the next day, no shift: the normal sign-in
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


def test_the_roster_says_which_removed_shift_bars_a_sign_in_and_who_removed_it(core, clock):
    """The core's half: the first shift taken off the roster that bars a sign-in from now
    to its end, with who removed it and when, when the sign-in may act no longer and when its
    guard may sign in again (``Roster.barred``: the handover's hour after the one under way);
    its id given to another shift is not the shift either."""
    rota: Roster = core.ledgers.roster
    gate = core.config.site.kiosk_id
    at = datetime(2026, 2, 12, tzinfo=UTC)
    day = rota.add_shift(gate, "alice", at, at + timedelta(hours=8), "root")
    evening = rota.add_shift(
        gate, "alice", at + timedelta(hours=8), at + timedelta(hours=12), "root"
    )
    marks, now, end = (day.mark, evening.mark), clock.now(), at + timedelta(hours=13)
    assert rota.barred(gate, "alice", now, end, marks) is None
    clock.advance(600)
    rota.remove_shift(evening.id, "root")
    gone = rota.barred(gate, "alice", now, end, marks)
    assert gone is not None and (gone.mark, gone.by) == (evening.mark, "root")
    assert gone.ends == at + timedelta(hours=9)  # the day shift's handover hour
    assert gone.until == at + timedelta(hours=13)
    assert gone.at is not None and abs(gone.at - clock.now()) < timedelta(seconds=1)
    assert rota.barred(gate, "alice", now, end) == gone  # the removal says it, marks or not
    reused = rota.add_shift(gate, "root", at + timedelta(hours=8), at + timedelta(hours=9), "root")
    assert reused.id == evening.id and rota.barred(gate, "alice", now, end, marks) == gone


def test_a_shift_changed_on_the_roster_ends_the_sign_in_made_on_it(app, admin, core, clock):
    """No console route edits a shift; one changed on the roster all the same (its row
    changed: a future route, a repair by hand) bars the sign-in made on it as a removal does,
    wherever the shift as it is now does not hold the time, the sign-in page saying it was
    changed (no removal to name): 08:00-16:00 cut to 08:00-12:00 ends the sign-in at 13:00,
    the new end's handover hour; moved to 14:00-16:00, at once."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    [shift] = _alices_shifts(core)

    def change(starts: str, ends: str) -> None:
        sql = "update roster_shifts set starts_at = ?, ends_at = ? where id = ?"
        core.store.submit(lambda db: db.execute(sql, [starts, ends, shift.id]))

    with signed_in(app, "alice") as tablet:
        change("2026-02-12T00:00:00.000000Z", "2026-02-12T04:00:00.000000Z")
        page = tablet.get("/guard", follow_redirects=False)
        assert page.status_code == 200 and 'data-session-left-s="14400"' in page.text  # 13:00
        change("2026-02-12T06:00:00.000000Z", "2026-02-12T08:00:00.000000Z")
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        login = tablet.get("/guard/login?lang=en").text
        said = re.search(r'id="shift-removed">([^<]+)<', login).group(1)
        assert said.startswith("Your shift (2026-02-12 08:00–16:00) was changed on the roster")


def test_the_live_stream_ended_by_the_roster_says_what_the_login_page_says(app, admin, core):
    """The live page's banner said "sign-in expired" when its stream ended a sign-in for a
    removed shift: the stream's ``expired`` now carries the login page's words (``reason``),
    which the page's banner shows; a plain end carries none (the page says its own)."""
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


def test_a_removal_bars_the_shifts_own_span_not_the_guards_day(app, admin, core, clock):
    """From the evening of 2026-12-07 to rv30a's proof, any shift of hers removed today
    refused her sign-in all day: a volunteer whose shift of next week was removed (a wrong
    day rostered) was locked out today, against "the roster is no list of who may sign in".
    A removal bars its own span and the handover's hour after it only: today she signs in as
    any; on that day, during it, she is refused."""
    _shift(admin, "2026-02-19T08:00", "2026-02-19T16:00")
    gate, day = core.config.site.kiosk_id, datetime(2026, 2, 19, tzinfo=UTC)
    [shift] = core.ledgers.roster.shifts(gate, day - timedelta(days=1), day + timedelta(days=1))
    _remove(admin, shift)
    tablet, signed = _sign_in(app)
    hours = int(core.config.web.session_hours * 3600)
    assert signed.status_code == 200 and f'data-session-left-s="{hours}"' in signed.text
    clock.advance(7 * 24 * 3600)  # 2026-02-19 09:00, in the removed shift
    tablet, refused = _sign_in(app)
    said = html.unescape(re.search(r'class="flash err"[^>]*>([^<]+)<', refused.text)[1])
    assert refused.status_code == 403, said
    assert "(2026-02-19 08:00–16:00) was removed by root at 2026-02-12 09:00" in said
    assert "until 17:00" in said


def test_a_shift_moved_by_remove_and_add_again_keeps_its_guard_signing_in(app, admin, core, clock):
    """Her 18:00-22:00 moved to 17:00-22:00 (no route edits a shift: removed and added
    again). At 10:00 she signs in to read the handover notes: refused and told to get
    rostered, though she is (rv30a). The removed span is held by her shift of the same hours:
    nothing bars her, now or at 18:00."""
    _shift(admin, "2026-02-12T18:00", "2026-02-12T22:00")
    [shift] = _alices_shifts(core)
    _remove(admin, shift)
    _shift(admin, "2026-02-12T17:00", "2026-02-12T22:00")
    clock.advance(3600)  # 10:00
    tablet, signed = _sign_in(app)
    assert signed.status_code == 200  # to 22:00, her session hours
    clock.advance(8 * 3600)  # 18:00, on the new shift
    tablet, signed = _sign_in(app)
    assert signed.status_code == 200 and 'data-session-left-s="18000"' in signed.text  # 23:00


def test_a_shift_under_way_removed_ends_a_sign_in_made_before_its_lead(app, admin, core, clock):
    """Rostered 10:30-18:30, she signed in at 09:00 (outside the hour's lead: no shift held
    the sign-in, ``web.session_hours``, to 21:00). Removed at 11:00 while under way, her
    sign-in went on acting to 21:00 though a new one was refused (rv30a): a sign-in is tied to
    every shift of hers within its lifetime, and ends with it."""
    _shift(admin, "2026-02-12T10:30", "2026-02-12T18:30")
    with signed_in(app, "alice") as tablet:
        assert 'data-session-left-s="43200"' in tablet.get("/guard").text  # to 21:00
        clock.advance(2 * 3600)  # 11:00
        [shift] = _alices_shifts(core)
        _remove(admin, shift)
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        login = tablet.get("/guard/login?lang=en").text
        assert "(2026-02-12 10:30–18:30) was removed by root at 11:00" in html.unescape(login)


def test_a_shift_removed_before_it_begins_ends_the_sign_in_as_it_would(app, admin, core, clock):
    """The same sign-in at 09:00, her 10:30-18:30 shift removed at 09:30 before it began: she
    acts until 10:30, its start (the page's time left says so), not through the shift an
    admin took her off."""
    _shift(admin, "2026-02-12T10:30", "2026-02-12T18:30")
    with signed_in(app, "alice") as tablet:
        clock.advance(1800)  # 09:30
        [shift] = _alices_shifts(core)
        _remove(admin, shift)
        page = tablet.get("/guard", follow_redirects=False)
        assert page.status_code == 200 and 'data-session-left-s="3600"' in page.text  # 10:30
        clock.advance(3600)
        assert tablet.get("/guard", follow_redirects=False).status_code == 303


def test_a_night_guard_removed_does_not_sign_back_in_after_midnight(app, admin, core, clock):
    """Her night 20:00-08:00 removed at 23:00: at 00:05, the site's next day, she signed in
    again for 12 hours (the bar counted removals of the site's day only; rv30a). The removed
    night bars her to its end and the handover's hour, 09:00."""
    _shift(admin, "2026-02-12T20:00", "2026-02-13T08:00")
    clock.advance(14 * 3600)  # 23:00
    tablet, signed = _sign_in(app)
    assert signed.status_code == 200
    [shift] = _alices_shifts(core)
    core.ledgers.roster.remove_shift(shift.id, "root")  # root's console sign-in is over
    assert tablet.get("/guard", follow_redirects=False).status_code == 303
    clock.advance(65 * 60)  # 00:05
    again, refused = _sign_in(app)
    assert refused.status_code == 403 and "kiosk_session" not in again.cookies
    assert "until 09:00" in html.unescape(refused.text)
    clock.advance(9 * 3600)  # 09:05: the night and its handover hour over
    again, signed = _sign_in(app)
    assert signed.status_code == 200


def test_a_volunteer_signing_in_before_a_removed_shift_acts_until_it(app, admin, core, clock):
    """A sign-in lasts no further than the start of a removed shift's span: at 09:00, her
    14:00-18:00 removed, she signs in for the five hours before it."""
    _shift(admin, "2026-02-12T14:00", "2026-02-12T18:00")
    [shift] = _alices_shifts(core)
    _remove(admin, shift)
    tablet, signed = _sign_in(app)
    assert signed.status_code == 200 and 'data-session-left-s="18000"' in signed.text  # 14:00


def _add(admin, guard: str, starts: str, ends: str) -> None:
    posted = post(admin, "/guard/community/shifts", admin.csrf, guard=guard,
                  starts=starts, ends=ends)  # fmt: skip
    assert refused_with(admin, posted) is None, posted.text[:300]


def _refusal(answer) -> str:
    return html.unescape(re.search(r'class="flash err"[^>]*>([^<]+)<', answer.text)[1])


def test_a_swapped_guard_signs_in_for_her_new_shift_within_its_lead(app, admin, core, clock):
    """A swap at 09:00: alice's 08:30-17:30 removed, bob given it, alice given 17:30-22:00. At
    17:00, the hour before her evening shift, she was refused "until 18:30, its handover's
    hour", though at 17:30 she signed in (rv30f): her evening shift holds its lead too. At
    12:00 she is refused until 16:30, when the lead begins."""
    core.accounts.add("bob", "guard", hash_password(BOB_PW, n=2**10), "root")
    _shift(admin, "2026-02-12T08:30", "2026-02-12T17:30")
    [day] = _alices_shifts(core)
    _remove(admin, day)
    _add(admin, "bob", "2026-02-12T08:30", "2026-02-12T17:30")
    _add(admin, "alice", "2026-02-12T17:30", "2026-02-12T22:00")
    clock.advance(3 * 3600)  # 12:00
    tablet, refused = _sign_in(app)
    assert refused.status_code == 403
    assert "you cannot sign in until 16:30 unless an admin rosters you" in _refusal(refused)
    clock.advance(5 * 3600)  # 17:00
    tablet, signed = _sign_in(app)
    assert signed.status_code == 200, _refusal(signed)
    assert 'data-session-left-s="21600"' in signed.text  # 23:00


def test_a_shift_removed_before_one_kept_bars_to_the_kept_ones_lead(app, admin, core, clock):
    """08:00-12:00 removed, 12:00-16:00 kept: at 11:00 she was refused and told "until
    13:00" (rv30f); she signs in for the afternoon. At 09:00 she is refused until 11:00."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T12:00")
    _shift(admin, "2026-02-12T12:00", "2026-02-12T16:00")
    _remove(admin, _alices_shifts(core)[0])
    tablet, refused = _sign_in(app)
    assert refused.status_code == 403
    assert "you cannot sign in until 11:00 unless" in _refusal(refused)
    clock.advance(2 * 3600)  # 11:00
    tablet, signed = _sign_in(app)
    assert signed.status_code == 200 and 'data-session-left-s="21600"' in signed.text  # 17:00


def test_back_to_back_shifts_removed_are_one_stretch_in_the_refusal(app, admin, core, clock):
    """08:00-12:00 and 12:00-16:00 both removed: at 09:00 she is refused until 17:00, the end
    of the last one's handover hour, not 13:00 (when she would be refused again)."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T12:00")
    _shift(admin, "2026-02-12T12:00", "2026-02-12T16:00")
    for shift in _alices_shifts(core):
        _remove(admin, shift)
    tablet, refused = _sign_in(app)
    assert refused.status_code == 403 and "you cannot sign in until 17:00" in _refusal(refused)


def test_a_guard_rostered_after_her_sign_in_and_removed_stops_acting(app, admin, core, clock):
    """Alice signed in at 09:00 with no shift (12 h); at 09:05 the admin rostered her
    09:30-17:30 and at 10:00 removed it: a new sign-in was refused, but her open console went
    on (39,300 s left) and her manual pass was recorded (rv30f): the sign-in knew only the
    shifts it was made on. Each request reads the roster as it stands."""
    with signed_in(app, "alice") as tablet:
        clock.advance(5 * 60)
        _shift(admin, "2026-02-12T09:30", "2026-02-12T17:30")
        clock.advance(55 * 60)  # 10:00
        [shift] = _alices_shifts(core)
        _remove(admin, shift)
        again, refused = _sign_in(app)
        assert refused.status_code == 403
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        posted = _browser_post(tablet, "/guard/manual", decision="pass", subject="none",
                               reason="known", direction="in")  # fmt: skip
        assert posted.status_code == 303 and "/guard/login" in posted.headers["location"]
        assert not [e for e in core.store.events() if e["decision"] == "manual_pass"]
        login = html.unescape(tablet.get("/guard/login?lang=en").text)
        assert "(2026-02-12 09:30–17:30) was removed by root at 10:00" in login


def test_a_shift_changed_under_way_by_remove_and_add_keeps_its_guard(app, admin, core, clock):
    """Alice on 08:30-17:30 (bob rostered tomorrow: the new shift gets no reused id); at
    10:00 the admin extends hers to 18:30 (remove and add again): she was signed out, told to
    ask an admin to roster her, though she is (rv30f). The new shift holds the time: she
    goes on; removed in its turn, she is out."""
    core.accounts.add("bob", "guard", hash_password(BOB_PW, n=2**10), "root")
    _shift(admin, "2026-02-12T08:30", "2026-02-12T17:30")
    _add(admin, "bob", "2026-02-13T08:30", "2026-02-13T17:30")
    with signed_in(app, "alice") as tablet:
        clock.advance(3600)
        [mine] = [s for s in _alices_shifts(core) if s.guard == "alice"]
        _remove(admin, mine)
        _shift(admin, "2026-02-12T08:30", "2026-02-12T18:30")
        page = tablet.get("/guard", follow_redirects=False)
        # 19:30: 18:30 and the handover's hour (the session follows the roster's longer shift;
        # it was held to its sign-in's 18:30 until 2cb813d6)
        assert page.status_code == 200 and 'data-session-left-s="34200"' in page.text
        [longer] = [s for s in _alices_shifts(core) if s.guard == "alice"]
        _remove(admin, longer)
        assert tablet.get("/guard", follow_redirects=False).status_code == 303


def test_an_admin_is_not_held_to_the_roster(app, admin, core, clock):
    """Root rostered by mistake (meant alice) for 08:30-17:30, signed in, removes it: his
    console was signed out, "ask an admin to roster you" (rv30f), against "an admin is never
    held to the roster"."""
    _add(admin, "root", "2026-02-12T08:30", "2026-02-12T17:30")
    with signed_in(app, "root", ADMIN_PW) as root:
        [mistake] = _alices_shifts(core)
        _remove(root, mistake)
        assert root.get("/guard", follow_redirects=False).status_code == 200
        assert 'id="shift-removed"' not in root.get("/guard/login?lang=en").text
    again, signed = _sign_in(app, "root", ADMIN_PW)
    assert signed.status_code == 200


def test_a_guards_removals_are_read_by_an_index_not_all_of_them(core):
    """Every request of a guard's console reads her removals (``Roster.barred``): by the
    index of a guard's removals and the shift's end, not a scan of every removal ever made."""
    from kiosk import roster

    sql = roster._ROSTER_OF + roster._MARKED.format("?")
    args = ["alice", "gate-1", "alice", "2026", "2027", "alice", "alice", "alice"]
    args += ["gate-1", "2025", "2027", "2026"]
    plan = core.store.reader().execute("explain query plan " + sql, [*args, 1]).fetchall()
    assert any("USING INDEX audit_shift_removals" in str(row[-1]) for row in plan), plan


def test_a_guards_shifts_are_read_from_a_day_before_not_the_whole_roster(core, clock):
    """Every request of a guard's console reads her shifts on the roster (``Roster.barred``):
    by the roster's gate and start bounded on both sides (no shift is longer than
    ``MAX_SHIFT``), not every shift since the gate was installed (the roster is never
    purged: three years are 3,285 shifts). A shift of the longest starting just after the
    bound still holds her."""
    from kiosk import roster

    sql = roster._ROSTER_OF + roster._MARKED.format("?")
    args = ["alice", "gate-1", "alice", "2026", "2027", "alice", "alice", "alice"]
    args += ["gate-1", "2025", "2027", "2026"]
    plan = core.store.reader().execute("explain query plan " + sql, [*args, 1]).fetchall()
    bounded = "idx_roster_shifts_gate_starts_at (gate=? AND starts_at>? AND starts_at<?)"
    assert any(bounded in str(row[-1]) for row in plan), plan
    gate, now, hour = core.config.site.kiosk_id, clock.now(), timedelta(hours=1)
    rota = core.ledgers.roster
    day = rota.add_shift(gate, "alice", now - 23 * hour, now + hour, "root")
    assert rota.barred(gate, "alice", now, now + 2 * hour, [day.mark]) is None


def _damaged(*args, **kwargs):
    exc = sqlite3.DatabaseError("database disk image is malformed")
    exc.sqlite_errorname = "SQLITE_CORRUPT"
    raise exc


def _cannot_open(*args, **kwargs):
    raise StoreFault("store_fault", "cannot open a reader (SQLITE_CANTOPEN)")


def _manual_passes(core) -> int:
    return len([e for e in core.store.events() if e["decision"] == "manual_pass"])


@pytest.mark.parametrize("fault", [_damaged, _cannot_open])
def test_a_guard_keeps_the_gate_while_the_roster_cannot_be_read(core, monkeypatch, fault):
    """Alice, a volunteer with no shift, signed in; the roster's pages cannot be read (a
    damaged page of the card, a reader that cannot open). Her console goes on (it was every
    guard request answered 503 for a damaged page: the manual pass, the gate's fallback in
    a card fault, gone with it); an admin's too; the login page answers."""
    from ui.app import create_app

    app = create_app(core)
    with signed_in(app, "alice", raise_server_exceptions=False) as tablet:
        monkeypatch.setattr(core.ledgers.roster, "barred", fault)
        assert tablet.get("/guard", follow_redirects=False).status_code == 200
        posted = _browser_post(tablet, "/guard/manual", decision="pass", subject="none",
                               reason="known", direction="in")  # fmt: skip
        assert posted.status_code == 303 and refused_with(tablet, posted) is None
        assert _manual_passes(core) == 1
        login = tablet.get("/guard/login?lang=en", follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/guard"  # signed in
    with signed_in(app, "root", ADMIN_PW, raise_server_exceptions=False) as root:
        assert root.get("/guard", follow_redirects=False).status_code == 200


@pytest.mark.parametrize("fault", [_damaged, _cannot_open])
def test_a_removed_guard_stays_out_while_the_roster_cannot_be_read(
    app, admin, core, monkeypatch, fault
):
    """Alice's shift removed, her console sent to the login page; then the roster cannot
    be read. She stays out (the roster's last answer for her sign-in stands): no manual
    pass of hers recorded (it was let in again when a reader could not open)."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        [shift] = _alices_shifts(core)
        _remove(admin, shift)
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        monkeypatch.setattr(core.ledgers.roster, "barred", fault)
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        posted = _browser_post(tablet, "/guard/manual", decision="pass", subject="none",
                               reason="known", direction="in")  # fmt: skip
        assert posted.headers["location"].startswith("/guard/login")
        assert _manual_passes(core) == 0


def test_a_removal_undone_gives_the_live_stream_back_its_end(app, admin, core, clock):
    """Alice on 08:00-16:00 and 16:00-20:00; the evening removed at 09:00 (her stream
    shortened to 17:00), added again at 09:30 to 21:00. At 17:00 her page opens (the roster
    holds her) and so her stream goes on (it ended, "sign-in ended", the feed and alarms
    stopped on a console still signed in and rostered), a stream opened after the removal
    too; at the end of her sign-in it ends."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    _shift(admin, "2026-02-12T16:00", "2026-02-12T20:00")
    with signed_in(app, "alice") as tablet:
        g = tablet.app.state.guard
        session = g.auth.sessions.read(tablet.cookies.get("kiosk_session"))
        stream = FeedStream(g, session, "en", 0)
        assert asyncio.run(stream.expired()) is None
        _remove(admin, _alices_shifts(core)[1])
        assert asyncio.run(stream.expired()) is None  # shortened to 17:00
        shortened = g.auth.still_holds(session)
        assert shortened.expires < session.expires
        cookie = ("cookie", f"kiosk_session={tablet.cookies.get('kiosk_session')}")
        asked = Request({"type": "http", "headers": [tuple(h.encode() for h in cookie)]})
        assert g.auth.as_signed(asked, shortened).expires == session.expires
        reopened = FeedStream(g, shortened, "en", 0, session)  # as ``guard_events`` makes it
        clock.advance(1800)
        _shift(admin, "2026-02-12T16:00", "2026-02-12T21:00")
        assert asyncio.run(stream.expired()) is None
        clock.advance(7 * 3600 + 1800)  # 17:00
        assert tablet.get("/guard", follow_redirects=False).status_code == 200
        assert asyncio.run(stream.expired()) is None
        assert asyncio.run(reopened.expired()) is None
        clock.advance(4 * 3600)  # 21:00: her sign-in (to 20:00 and the handover's hour) ends
        assert asyncio.run(stream.expired()) == ""


def test_an_admin_demoted_is_told_which_removal_ended_the_sign_in(app, admin, core):
    """Boss, an admin rostered 08:30-17:30, removed his own shift (an admin is not held to
    the roster), then was made a guard while signed in: his next request goes to the login
    page, which says whose removal ended it (it said nothing: the cookie's role was admin)."""
    core.accounts.add("boss", "admin", hash_password("boss-pw-123", n=2**10), "root")
    _add(admin, "boss", "2026-02-12T08:30", "2026-02-12T17:30")
    with signed_in(app, "boss", "boss-pw-123") as boss:
        [mine] = [s for s in _alices_shifts(core) if s.guard == "boss"]
        _remove(boss, mine)
        assert boss.get("/guard", follow_redirects=False).status_code == 200
        core.store.submit(
            lambda db: db.execute("update guard_accounts set role = 'guard' where name = 'boss'")
        )
        assert boss.get("/guard", follow_redirects=False).status_code == 303
        login = html.unescape(boss.get("/guard/login?lang=en").text)
    said = re.search(r'id="shift-removed">([^<]+)<', login)
    assert said is not None and "was removed by boss at 09:00" in said.group(1), login[-2000:]


@pytest.mark.parametrize("fault", [_damaged, _cannot_open])
def test_a_guard_signs_in_while_the_roster_cannot_be_read(core, monkeypatch, fault):
    """A guard signing in while the roster's pages cannot be read (a damaged page, a reader
    that cannot open) was answered 503, or sent back with 'the storage failed', no session:
    the console said a sign-in made during the fault keeps the gate, and it could not be
    made. She signs in, for the configured lifetime, and her console answers."""
    from ui.app import create_app

    app = create_app(core)
    monkeypatch.setattr(core.ledgers.roster, "barred", fault)
    monkeypatch.setattr(core.ledgers.roster, "shifts", fault)
    tablet, signed = _sign_in(app)
    assert signed.status_code == 200, signed.text[:300]
    assert "kiosk_session" in tablet.cookies
    assert tablet.get("/guard", follow_redirects=False).status_code == 200
