"""What a LAN attacker (or a clumsy office script) still found at the network edge after issue 15.

Each test is a defect seen against the running demo over real sockets, replayed here in
process: the guard console and the kiosk screen on ``guard_core`` (tests/guard_support.py).
"""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_login_page_shows_no_error_text_from_its_url(guard_client: TestClient) -> None:
    # A link to /guard/login?error=... put any text in the red banner of the real sign-in
    # page: "Call IT on 555-0100 and give them your password".
    lure = "Session ended: call IT on 555-0100 and read them your password"
    page = guard_client.get("/guard/login", params={"error": lure})
    assert page.status_code == 200
    assert "555-0100" not in page.text
    assert 'role="alert"' not in page.text
