"""A console banner's address was a pass to show its words anywhere, to anyone, for as long
as the process ran: a guard who once voided a pass (or anyone who saw that address: a shared
tablet's history, a photo) could send any guard a link showing "Voided at this gate", on any
page, a day later; and ``/guard/login?bye=1`` said "You are signed out" to whoever opened it.
A banner's signature now covers the session it was written for, the page it was sent to and
when (``ui.guard.deps.flash_to``); a page shows it only to that session, on that page, within
``FLASH_LIFETIME_S``. The sign-out's note comes with a one-time cookie the sign-out sets."""

from __future__ import annotations

from fastapi.testclient import TestClient
from guard_support import ADMIN_PW, BASE, login, post
from test_guard_flash_signed import _voided, banners

from ui.guard.deps import FLASH_LIFETIME_S

VOIDED = "✔ Voided at this gate"


def _shown(client, address: str) -> list[str]:
    page = client.get(address + "&lang=en")
    assert page.status_code == 200
    return banners(page.text)


def test_a_banners_address_shows_nothing_to_another_session(guard_client):
    location = _voided(guard_client).headers["location"]
    assert _shown(guard_client, location)[0].startswith(VOIDED)  # its own session: shown
    with TestClient(guard_client.app, base_url=BASE) as other:
        login(other, "root", ADMIN_PW)
        assert _shown(other, location) == []


def test_a_banners_address_shows_nothing_on_another_page(guard_client):
    location = _voided(guard_client).headers["location"]
    assert location.startswith("/guard/passes?")
    query = location.split("?", 1)[1]
    for page in ("/guard", "/guard/lists", "/guard/calibration"):
        assert _shown(guard_client, f"{page}?{query}") == [], page
    assert _shown(guard_client, location)[0].startswith(VOIDED)


def test_a_banners_address_shows_nothing_once_it_is_old(guard_client, clock):
    location = _voided(guard_client).headers["location"]
    clock.advance(FLASH_LIFETIME_S)
    assert _shown(guard_client, location)[0].startswith(VOIDED)  # just within its lifetime
    clock.advance(1)
    assert _shown(guard_client, location) == []
    clock.advance(26 * 3600)
    assert _shown(guard_client, location) == []


def test_a_banners_time_cannot_be_changed(guard_client, clock):
    location = _voided(guard_client).headers["location"]
    clock.advance(FLASH_LIFETIME_S + 1)
    mac, issued = location.split("sig=")[1].split(".")
    later = location.replace(f"sig={mac}.{issued}", f"sig={mac}.{int(issued) + 10}")
    assert later != location
    assert _shown(guard_client, later) == []


def test_a_bye_link_says_nobody_signed_out(guard_client):
    page = guard_client.get("/guard/login?bye=1&lang=en")
    assert page.status_code == 200
    assert "signed out" not in " ".join(banners(page.text)).lower()
    assert banners(page.text) == []


def test_a_real_sign_out_says_so_once(guard_client):
    csrf = login(guard_client)
    out = post(guard_client, "/guard/logout", csrf)
    assert out.status_code == 303 and out.headers["location"] == "/guard/login"
    first = guard_client.get("/guard/login?lang=en")
    assert banners(first.text) == ["You are signed out"]
    again = guard_client.get("/guard/login?lang=en")
    assert banners(again.text) == []
