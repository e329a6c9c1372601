"""A night shift removed across the autumn clock change (rv30f): the removed night bars its
guard to its end and the handover's hour after it by the real time, the repeated hour
counted once; after it the guard signs in as any."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from guard_support import (
    ADMIN_PW,
    BASE,
    GUARD_PW,
    close_core,
    make_app,
    make_core,
    post,
    refused_with,
    signed_in,
)

from kiosk.clock import FakeClock
from kiosk.config import KioskConfig


@pytest.fixture
def clock():
    return FakeClock(start=datetime(2026, 10, 24, 19, 30, tzinfo=UTC))  # 21:30 Berlin (CEST)


def _sign_in(app):
    tablet = TestClient(app, base_url=BASE)
    page = tablet.get("/guard/login?lang=en").text
    token = html.unescape(re.search(r'name="csrf" value="([^"]+)"', page).group(1))
    signed = tablet.post(
        "/guard/login?lang=en",
        data={"name": "alice", "password": GUARD_PW, "csrf": token, "next": "/guard"},
        headers={"Origin": BASE},
    )
    return tablet, signed


def test_a_night_removed_across_the_autumn_change_bars_its_real_hours(data_dir, clock, monkeypatch):
    """22:00-06:00 Berlin over the night the clocks go back (nine hours of real time), signed
    in at 21:30 (to 07:00 CET, 10.5 h), removed at 23:00: her sign-in ends; at the second
    02:30 she is refused until 07:00; at 06:59 still, at 07:00 she signs in."""
    cfg = KioskConfig.model_validate({"site": {"timezone": "Europe/Berlin"}})
    core = make_core(data_dir, clock, monkeypatch, cfg)
    try:
        app = make_app(core)
        with signed_in(app, "root", ADMIN_PW) as admin:
            posted = post(admin, "/guard/community/shifts", admin.csrf, guard="alice",
                          starts="2026-10-24T22:00", ends="2026-10-25T06:00")  # fmt: skip
            assert refused_with(admin, posted) is None
            tablet, signed = _sign_in(app)
            assert 'data-session-left-s="37800"' in signed.text
            clock.advance(1800 + 3600)  # 23:00 CEST
            gate = core.config.site.kiosk_id
            days = datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 26, tzinfo=UTC)
            [shift] = core.ledgers.roster.shifts(gate, *days)
            shown = {"starts_at": shift.starts_at.isoformat(), "ends_at": shift.ends_at.isoformat()}
            path = f"/guard/community/shifts/{shift.id}/remove"
            removed = post(admin, path, admin.csrf, guard="alice", **shown)
            assert refused_with(admin, removed) is None
        assert tablet.get("/guard", follow_redirects=False).status_code == 303
        clock.advance(3 * 3600 + 1800)  # 01:30Z: the second 02:30 (CET)
        again, refused = _sign_in(app)
        said = html.unescape(re.search(r'class="flash err"[^>]*>([^<]+)<', refused.text)[1])
        assert refused.status_code == 403 and "you cannot sign in until 07:00" in said, said
        clock.advance(5 * 3600 + 1800 - 60)  # 05:59Z, 06:59 CET
        assert _sign_in(app)[1].status_code == 403
        clock.advance(60)  # 07:00 CET
        assert _sign_in(app)[1].status_code == 200
    finally:
        close_core(core)
