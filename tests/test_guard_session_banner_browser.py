"""The live page in Chromium: its "sign-in has ended" banner follows the session the roster
lengthens. It counted to the end the page was drawn with (guard.js, ``data-session-left-s``)
and said at 17:00 that alice's sign-in had ended while it went on to 23:00 (her evening shift
added at 10:00). Each stream beat now carries the time left (``session_left_s``) and the
banner counts to it.

The page's requests are served by the app (its FakeClock moved with the browser's clock);
the stream by the app's ``FeedStream.beat`` for the session as it is then (one beat, then
the browser opens it again, as after a stream closed at its end)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from guard_support import BASE, signed_in
from test_shift_removed_session import _shift

from ui.auth import COOKIE
from ui.guard.live import FeedStream

from guard_support import console_fixtures  # isort: skip

pytestmark = pytest.mark.browser

#: 09:00 in Shanghai (the rig's site) on the console's clock.
START = datetime(2026, 2, 12, 1, 0, tzinfo=UTC)
clock, core, app, alice, admin = console_fixtures(START)
STATIC = Path(__file__).resolve().parents[1] / "ui" / "static"
HIDDEN = "() => document.getElementById('session-warning').hidden"


def _served_by(tablet):
    g = tablet.app.state.guard

    def serve(route) -> None:
        url = urlsplit(route.request.url)
        if url.path.startswith("/static/"):
            kind = "application/javascript" if url.path.endswith(".js") else "text/css"
            route.fulfill(body=(STATIC / url.path[8:]).read_bytes(), content_type=kind)
            return
        if url.path.startswith("/guard/events"):
            session = g.auth.sessions.read(tablet.cookies.get(COOKIE))
            beat = FeedStream(g, session, "en", 0).beat()
            route.fulfill(body="retry: 500\n\n" + beat, content_type="text/event-stream")
            return
        answer = tablet.request(route.request.method, f"{url.path}?{url.query}")
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "set-cookie"}
        route.fulfill(status=answer.status_code, body=answer.content, headers=headers)

    return serve


def test_the_live_page_counts_to_the_end_the_roster_gives(app, admin, clock, browser):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    with signed_in(app, "alice") as tablet:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.clock.install(time=START.timestamp() * 1000)
            page.route("**/*", _served_by(tablet))
            page.goto(BASE + "/guard?lang=en")
            assert page.evaluate("() => document.body.dataset.sessionLeftS") == str(8 * 3600)
            clock.advance(7 * 3600 + 55 * 60)  # 16:55: five minutes left, says the page
            page.clock.run_for((7 * 3600 + 55 * 60) * 1000)
            page.wait_for_selector("#session-warning", state="visible")
            assert "5 min" in page.inner_text("#session-warning-text")
            _shift(admin, "2026-02-12T16:00", "2026-02-12T22:00")  # the admin adds her evening
            assert tablet.get("/guard/api/feed").status_code == 200  # lengthened to 23:00
            # The stream's next beat: six hours left.
            page.wait_for_selector("#session-warning", state="hidden")
            clock.advance(10 * 60)  # 17:05, past the end the page was drawn with
            page.clock.run_for(10 * 60 * 1000)
            assert page.evaluate(HIDDEN)
            assert page.evaluate("() => window.guardSessionEnded") is False
        finally:
            context.close()
