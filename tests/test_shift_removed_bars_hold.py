"""A guard taken off the roster stays out however the gate is doing: the clock saying "not
synchronised" (hours without network, the clock still right), the roster unreadable (a
fresh sign-in, another tablet), and is told the removal that stands, until when (the day
too), and why a sign-in made before the clock was set ended. A bar kept through a roster
fault ends when the bar does; a removal's row that cannot be read is no server error."""

from __future__ import annotations

import html
import re
import sqlite3
from datetime import UTC, datetime, timedelta

from guard_support import ADMIN_PW, BASE, console_fixtures, post, refused_with, signed_in
from test_shift_removed_session import _sign_in

from kiosk.accounts import hash_password

#: 09:00 in Shanghai (the rig's site) on the console's clock.
clock, core, app, alice, admin = console_fixtures(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))


def _shift(admin, starts: str, ends: str, guard: str = "alice") -> None:
    posted = post(admin, "/guard/community/shifts", admin.csrf, guard=guard,
                  starts=starts, ends=ends)  # fmt: skip
    assert refused_with(admin, posted) is None, posted.text[:300]


def _shifts(core, guard: str = "alice"):
    day = datetime(2026, 2, 10, tzinfo=UTC)
    found = core.ledgers.roster.shifts(core.config.site.kiosk_id, day, day + timedelta(days=5))
    return [s for s in found if s.guard == guard]


def _remove(admin, shift) -> None:
    shown = {"starts_at": shift.starts_at.isoformat(), "ends_at": shift.ends_at.isoformat()}
    path = f"/guard/community/shifts/{shift.id}/remove"
    removed = post(admin, path, admin.csrf, guard=shift.guard, **shown)
    assert removed.status_code == 303 and refused_with(admin, removed) is None


def _refusal(answer) -> str:
    return html.unescape(re.search(r'class="flash err"[^>]*>([^<]+)<', answer.text)[1])


def _manual_pass(tablet):
    return tablet.post(
        "/guard/manual",
        data={
            "csrf": tablet.csrf,
            "decision": "pass",
            "subject": "none",
            "reason": "known",
            "direction": "in",
        },  # fmt: skip
        headers={"Origin": BASE, "Accept": "text/html,application/xhtml+xml"},
        follow_redirects=False,
    )


def _manual_passes(core) -> int:
    return len([e for e in core.store.events() if e["decision"] == "manual_pass"])


def _damaged(*args, **kwargs):
    exc = sqlite3.DatabaseError("database disk image is malformed")
    exc.sqlite_errorname = "SQLITE_CORRUPT"
    raise exc


def test_a_removed_guard_stays_out_while_the_clock_says_not_synchronised(app, admin, core, clock):
    """Alice 08:00-16:00, removed at 09:00: out. The kernel then says "not synchronised"
    (network down for hours), the clock still right: every bar lifted, her console back, a
    manual pass of hers recorded, a fresh sign-in of hers let in. She stays out, and her
    sign-in is refused, told who removed her shift and until when."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        _remove(admin, _shifts(core)[0])
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        clock.is_synced = False
        clock.advance(600)
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        assert _manual_pass(tablet).headers["location"].startswith("/guard/login")
        assert _manual_passes(core) == 0
    fresh, refused = _sign_in(app)
    assert refused.status_code == 403 and "kiosk_session" not in fresh.cookies
    assert (
        _refusal(refused)
        .removeprefix("✖ ")
        .startswith(
            "Your shift (2026-02-12 08:00–16:00) was removed by root at 09:00: you cannot sign in"
            " until 17:00"
        )
    )
    clock.advance(8 * 3600)  # 17:10: the removed shift's handover hour is over
    fresh, signed = _sign_in(app)
    assert signed.status_code == 200 and "kiosk_session" in fresh.cookies


def test_a_barred_guard_does_not_sign_in_again_while_the_roster_cannot_be_read(
    app, admin, core, clock, monkeypatch
):
    """Alice's shift removed (her tablet sent to the login page), then the roster's pages
    cannot be read. The last answer was kept per session: signing in again gave a session
    nothing barred, and her phone's, signed in before the removal and not asked since, went
    on. Both stay out until her bar ends (17:00); Bob, never barred, signs in all along."""
    core.accounts.add("bob", "guard", hash_password("bob-pw-1234", n=2**10), "root")
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as phone, signed_in(app, "alice") as tablet:
        _remove(admin, _shifts(core)[0])
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        monkeypatch.setattr(core.ledgers.roster, "barred", _damaged)
        assert phone.get("/guard", follow_redirects=False).status_code == 303
        assert _manual_pass(phone).headers["location"].startswith("/guard/login")
        again, refused = _sign_in(app)
        assert refused.status_code == 403 and "kiosk_session" not in again.cookies
        assert "was removed by root at 09:00" in _refusal(refused)
        assert _manual_passes(core) == 0
        bob, signed = _sign_in(app, "bob", "bob-pw-1234")
        assert signed.status_code == 200 and "kiosk_session" in bob.cookies
        clock.advance(8 * 3600)  # 17:00: her bar is over, the roster still unreadable
        again, signed = _sign_in(app)
        assert signed.status_code == 200 and "kiosk_session" in again.cookies


def test_a_bar_kept_through_a_roster_fault_ends_with_its_until(
    app, admin, core, clock, monkeypatch
):
    """Alice 08:00-16:00 and 16:00-20:00; the day's removed at 09:00: barred 09:00-15:00
    (the evening's lead). The roster cannot be read from 15:30: her console stayed out on
    the answer kept, whose end (15:00) was past. She is back, as the roster says."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    _shift(admin, "2026-02-12T16:00", "2026-02-12T20:00")
    with signed_in(app, "alice") as tablet:
        _remove(admin, _shifts(core)[0])
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        clock.advance(6 * 3600 + 1800)  # 15:30
        monkeypatch.setattr(core.ledgers.roster, "barred", _damaged)
        assert tablet.get("/guard", follow_redirects=False).status_code == 200
        assert _manual_pass(tablet).status_code == 303 and _manual_passes(core) == 1


def test_a_sign_in_made_before_the_clock_was_set_is_told_its_removal(app, core, clock):
    """Alice rostered 08:00-16:00 tomorrow. The Pi boots at 07:30 without network, its clock
    (at the log's newest stamp) reading 20:30 yesterday; she signs in. NTP sets the clock;
    at 09:00 her shift is removed: her console goes to the login page, which said nothing of
    why (the cookie's expiry, of the clock not set, was past)."""
    clock.set_wall(datetime(2026, 2, 11, 12, 0, tzinfo=UTC))  # 20:00, synchronised
    with signed_in(app, "root", ADMIN_PW) as root:
        _shift(root, "2026-02-12T08:00", "2026-02-12T16:00")
    clock.is_synced = False
    clock.advance(1800)
    with signed_in(app, "alice") as tablet:
        assert tablet.get("/guard", follow_redirects=False).status_code == 200
        clock.set_wall(datetime(2026, 2, 11, 23, 45, tzinfo=UTC))  # NTP: 07:45
        clock.is_synced = True
        clock.advance(75 * 60)  # 09:00
        with signed_in(app, "root", ADMIN_PW) as root:
            _remove(root, _shifts(core)[0])
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        login = html.unescape(tablet.get("/guard/login?lang=en").text)
    said = re.search(r'id="shift-removed">([^<]+)<', login)
    assert said is not None, login[-1500:]
    assert "(2026-02-12 08:00–16:00) was removed by root at 09:00" in said.group(1)


def test_the_refusal_names_the_removal_that_stands(app, admin, core, clock):
    """Alice's 08:00-16:00 removed by root at 09:00, rostered again at 09:30 (a new id: Bob's
    evening took the freed one), removed by boss at 10:00. Her refusal named root at 09:00,
    the removal undone; it names boss at 10:00."""
    core.accounts.add("boss", "admin", hash_password("boss-pw-123", n=2**10), "root")
    core.accounts.add("bob", "guard", hash_password("bob-pw-1234", n=2**10), "root")
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    _remove(admin, _shifts(core)[0])
    clock.advance(1800)
    _shift(admin, "2026-02-12T16:00", "2026-02-12T20:00", guard="bob")
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    clock.advance(1800)
    with signed_in(app, "boss", "boss-pw-123") as boss:
        _remove(boss, _shifts(core)[0])
    _, refused = _sign_in(app)
    assert refused.status_code == 403
    assert "(2026-02-12 08:00–16:00) was removed by boss at 10:00" in _refusal(refused)


def test_until_says_the_day_when_it_is_not_today(app, admin, core):
    """Alice on 08:00 12 Feb to 08:00 13 Feb (24 hours), removed at 09:00: she was told "until
    09:00" at 09:00, meaning tomorrow's. The day is said, as for the removal's time."""
    _shift(admin, "2026-02-12T08:00", "2026-02-13T08:00")
    _remove(admin, _shifts(core)[0])
    _, refused = _sign_in(app)
    assert refused.status_code == 403
    assert "removed by root at 09:00: you cannot sign in until 2026-02-13 09:00 " in (
        _refusal(refused)
    )


def test_a_removal_row_that_cannot_be_read_is_no_server_error(admin, core):
    """Alice's shift removed, its audit row's detail then edited by hand (a personal field:
    rewritable), its times no times: every request of her console was a server error (500),
    a sign-in of hers too. It is read as a roster that cannot be read: the last answer
    stands (she stays out), nothing raised; an admin's console answers."""
    from ui.app import create_app

    app = create_app(core)
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice", raise_server_exceptions=False) as tablet:
        _remove(admin, _shifts(core)[0])
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        gate = core.config.site.kiosk_id
        edited = f'{{"shift_id": 1, "gate": "{gate}", "guard": "alice", "starts_at": "",'
        edited += ' "ends_at": "zz"}'
        core.store.submit(
            lambda db: db.execute(
                "update audit set detail = ? where action = 'roster.shift_remove'", [edited]
            )
        )
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        _, refused = _sign_in(app)
        assert refused.status_code == 403 and "was removed by root" in _refusal(refused)
    assert admin.get("/guard", follow_redirects=False).status_code == 200


def test_a_sign_in_past_its_end_asked_again_keeps_its_guards_bar(core, clock):
    """Alice's bar (from 07:00 to 17:00) kept from one sign-in; another of hers, past its end
    at 08:59, is asked again at 09:00 (a live stream's ``still_holds``: nothing read, no bar
    found): her bar is not dropped by it, and a sign-in of hers during a roster fault is
    still refused."""
    from kiosk.roster import ShiftGone
    from kiosk.store import StoreFault
    from ui.auth import GuardAuth, Session

    now = clock.now()
    since = now - timedelta(hours=2)
    bar = ShiftGone((1, 0, 0), "root", since, since, now + timedelta(hours=8))
    broken = False

    def bars(name, marks, until):
        if broken:
            raise StoreFault("store_fault", "cannot open a reader")
        return None if until <= clock.now() else bar

    def unreadable():
        raise StoreFault("store_fault", "cannot open a reader")

    auth = GuardAuth(core.accounts, clock, key=b"k" * 32, roster_bars=bars)
    tablet = Session("tablet", "alice", "guard", now + timedelta(hours=7))
    ended = Session("phone", "alice", "guard", now - timedelta(minutes=1))
    assert auth.shift_gone(tablet) == bar
    assert auth.shift_gone(ended) is None
    broken = True
    assert auth.sign_in_bar(core.accounts.get("alice"), unreadable) == bar
