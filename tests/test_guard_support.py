"""The console tests' sign-in helper (``guard_support.login``) signs in as a guard does.

It posts the login form without drawing the login page, and reads the CSRF token from the
session instead of from the console's page: both must stay what the pages give, or every
console test would be signed in on something no guard's browser can do."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from guard_support import BASE, GUARD_PW, csrf_of, login, post


def test_the_helpers_sign_in_is_the_one_the_pages_give(guard_core):
    from guard_support import make_app

    app = make_app(guard_core)
    with TestClient(app, base_url=BASE) as by_hand, TestClient(app, base_url=BASE) as helped:
        form = by_hand.get("/guard/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        signed = by_hand.post(
            "/guard/login",
            data={"name": "alice", "password": GUARD_PW, "csrf": token, "next": "/guard"},
            headers={"Origin": BASE},
            follow_redirects=False,
        )
        assert signed.status_code == 303
        sessions = app.state.guard.auth.sessions
        session = sessions.read(by_hand.cookies.get("kiosk_session"))
        assert csrf_of(by_hand.get("/guard").text) == sessions.csrf_token(session)

        csrf = login(helped)
        front = helped.get("/guard")
        assert front.status_code == 200
        assert csrf_of(front.text) == csrf
        # and the console takes it: a form sent with it is not refused as forged
        assert post(helped, "/guard/logout", csrf).status_code == 303
        assert helped.get("/guard", follow_redirects=False).status_code in (302, 303)
