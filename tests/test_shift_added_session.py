"""A guard's session follows the roster both ways: a back-to-back shift added after sign-in
lengthens it. Alice signed in at 09:00 on her 08:00-16:00 shift (her sign-in lasting to 17:00,
the handover's hour); the admin added 16:00-22:00 for her at 10:00, and at 17:00 she was
signed out in the middle of her evening shift. Her cookie is now signed again to the stretch's
end, at her next request, or at the first one after its old end while her browser keeps it;
a removed shift still ends it (Roster.barred)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from guard_support import signed_in
from test_shift_removed_session import _alices_shifts, _remove, _shift

from ui.guard.live import REOPEN, FeedStream

from guard_support import console_fixtures  # isort: skip

#: 09:00 in Shanghai (the rig's site) on the console's clock.
clock, core, app, alice, admin = console_fixtures(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))

HOUR_S = 3600


def _left_s(tablet) -> int:
    page = tablet.get("/guard", follow_redirects=False)
    assert page.status_code == 200, page.headers.get("location")
    return int(page.text.split('data-session-left-s="')[1].split('"')[0])


def test_a_shift_added_after_sign_in_is_worked_through(app, admin, clock):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        assert _left_s(tablet) == 8 * HOUR_S  # to 17:00
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")
        assert _left_s(tablet) == 14 * HOUR_S  # to 23:00: 22:00 and the handover's hour
        clock.advance(9 * HOUR_S)  # 18:00, her evening shift
        assert _left_s(tablet) == 5 * HOUR_S


def test_a_session_over_by_its_cookie_is_lengthened_while_the_browser_keeps_it(app, admin, clock):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")
        clock.advance(8 * HOUR_S + 120)  # 17:02: no request since the shift was added
        assert _left_s(tablet) == 6 * HOUR_S - 120


def test_a_shift_added_then_removed_ends_the_session_as_before(app, admin, clock, core):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")
        assert _left_s(tablet) == 14 * HOUR_S
        evening = [s for s in _alices_shifts(core) if s.starts_at.hour == 8]  # 16:00 local
        _remove(admin, evening[0])
        assert _left_s(tablet) == 8 * HOUR_S  # to 17:00 again
        clock.advance(8 * HOUR_S + 1)
        ended = tablet.get("/guard", follow_redirects=False)
        assert ended.status_code == 303 and "/guard/login" in ended.headers["location"]


def test_a_later_shift_not_back_to_back_is_signed_in_for_anew(app, admin, clock):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        _shift(admin, "2026-02-12T18:00", "2026-02-12T22:00")
        assert _left_s(tablet) == 8 * HOUR_S
        clock.advance(8 * HOUR_S + 1)
        ended = tablet.get("/guard", follow_redirects=False)
        assert ended.status_code == 303


def test_a_live_stream_at_its_end_is_opened_again_when_the_roster_lengthened_it(app, admin, clock):
    """The live page's stream ended at 17:00 saying the sign-in was over, though her evening
    shift was on the roster: it now closes without a word, and the page opening it again gets
    the longer cookie."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        g = tablet.app.state.guard
        session = g.auth.sessions.read(tablet.cookies.get("kiosk_session"))
        stream = FeedStream(g, session, "en", 0)
        assert asyncio.run(stream.expired()) is None
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")
        clock.advance(8 * HOUR_S)  # 17:00, the end its sign-in gave it
        assert asyncio.run(stream.expired()) == REOPEN
        assert _left_s(tablet) == 6 * HOUR_S


def test_a_signed_out_stream_is_not_opened_again(app, admin, clock):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        g = tablet.app.state.guard
        session = g.auth.sessions.read(tablet.cookies.get("kiosk_session"))
        stream = FeedStream(g, session, "en", 0)
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")
        g.auth.sessions.revoke(session)
        assert asyncio.run(stream.expired()) == ""


def _beat_left_s(line: str) -> int:
    import json

    name, data = line.strip().split("\n")
    assert name == "event: beat"
    return int(json.loads(data.removeprefix("data: "))["session_left_s"])


def test_the_stream_tells_its_page_the_time_left_the_roster_gave(app, admin, clock):
    """The live page counted to the end it was drawn with and said at 17:00 that the sign-in
    had ended while it went on to 23:00: nothing told the page. Each beat now carries the
    session's time left, and the stream closing at the old end says the lengthened one."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        g = tablet.app.state.guard
        session = g.auth.sessions.read(tablet.cookies.get("kiosk_session"))
        stream = FeedStream(g, session, "en", 0)
        assert _beat_left_s(stream.beat()) == 8 * HOUR_S
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")
        clock.advance(8 * HOUR_S)  # 17:00
        assert asyncio.run(stream.expired()) == REOPEN
        assert _beat_left_s(stream.beat(stream.longer_left_s)) == 6 * HOUR_S


def _counting_roster_reads(monkeypatch) -> list[str]:
    from kiosk.roster import Roster

    reads: list[str] = []
    for name in ("stretch", "barred", "shifts"):
        real = getattr(Roster, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            reads.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Roster, name, counted)
    return reads


def test_far_from_its_end_a_request_asks_the_roster_to_lengthen_it_only_after_a_change(
    app, admin, clock, monkeypatch
):
    """Every request of a guard asked the roster whether it lengthened the session (its
    stretch, removals and shifts: 4 reads, not 1), 50-115 ms more a request with 3,000 shifts
    near now on a Pi. Far from its end it asks again only once the roster changed."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        reads = _counting_roster_reads(monkeypatch)
        assert _left_s(tablet) == 8 * HOUR_S  # its first request asks
        reads.clear()
        assert _left_s(tablet) == 8 * HOUR_S
        assert reads == ["barred"]  # the removals only: one read
        _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")
        reads.clear()
        assert _left_s(tablet) == 14 * HOUR_S  # the roster changed: asked, lengthened
        assert "stretch" in reads
        reads.clear()
        assert _left_s(tablet) == 14 * HOUR_S
        assert reads == ["barred"]
        clock.advance(13 * HOUR_S + 55 * 60)  # 22:55: near its end, asked at each request
        reads.clear()
        assert _left_s(tablet) == 5 * 60
        assert "stretch" in reads
