"""What the faces of a kiosk standing by show, and to whom (ui.standby, kiosk.standby).

Standing by, the event log cannot be opened: no guard account, session or API token in it can
be checked. What still tells a caller apart is its address: this host and the kiosk's own
screen (``web.screen_addresses``, as the whole health report is theirs when running). They get
the reason as the journal has it; anyone else on the LAN what public health says when the
kiosk runs: that it stands by, the kind of fault, since when, and what a guard does meanwhile,
never the data dir's paths, owners or SQLite's own words."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kiosk.standby import Standby
from ui.standby import create_standby_app

REASON = (
    "store_fault: cannot open kiosk.db (SQLITE_READONLY: /srv/kiosk-data/ is not writable by"
    " this user (owner uid 0))"
)
SECRETISH = ("/srv/kiosk-data", "uid 0", "SQLITE_READONLY")


def _standby() -> Standby:
    return Standby(REASON, "unwritable", "2026-03-02T08:30:00Z", tries=3)


def _client(address: str, local: tuple[str, ...] = ("127.0.0.1", "::1")) -> TestClient:
    app = create_standby_app(_standby(), "gate-1", local=local)
    return TestClient(app, client=(address, 40000))


@pytest.mark.parametrize("address", ["192.168.1.77", "10.0.0.9", "testclient"])
def test_a_passer_by_on_the_lan_sees_what_a_guard_does_not_the_cards_paths(address):
    """The standby console and health had no sign-in and gave anyone on the LAN the reason
    as the journal has it (the data dir's path, its owner's uid, SQLite's words), which
    public health never shows a running kiosk's caller. They say that the kiosk stands by,
    the kind of fault, since when, and what a guard does meanwhile."""
    web = _client(address)
    console = web.get("/guard")
    assert console.status_code == 503
    assert "paper register" in console.text and "manual release" in console.text
    assert "sudo chown -R kiosk:kiosk /var/lib/kiosk" in console.text  # the documented fix
    assert "journalctl -u kiosk" in console.text  # where the reason is said in full
    health = web.get("/api/v1/health")
    report = health.json()
    assert health.status_code == 503 and report["deciding"] is False
    assert report["standby"] == {"kind": "unwritable", "since": "2026-03-02T08:30:00Z", "tries": 3}
    assert report["withheld"] == ["standby.reason"]
    assert report["devices"]["store"]["state"] == "fault"
    other = web.get("/api/v1/events?after=0")
    assert other.status_code == 503
    feed = web.get("/guard/api/feed")  # what an open console page asks (guard.js)
    assert all(a.headers["X-Kiosk-State"] == "standby" for a in (console, health, other, feed))
    for answer in (console, health, other, web.get("/metrics")):
        for word in SECRETISH:
            assert word not in answer.text, (answer.request.url.path, word)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1", "192.168.1.20"])
def test_the_kiosk_itself_and_its_screen_see_the_reason_as_the_journal_has_it(address):
    """At the Pi (curl on loopback, the screen's browser) the technician reads the reason
    whole: the file and owner to mend."""
    web = _client(address, local=("127.0.0.1", "::1", "192.168.1.20"))
    console = web.get("/guard")
    health = web.get("/api/v1/health").json()
    assert REASON in console.text.replace("&#x27;", "'")
    assert health["standby"]["reason"] == REASON and "withheld" not in health
    assert health["devices"]["store"]["detail"] == REASON


def test_a_passer_by_loading_the_standby_screen_does_not_stand_in_for_a_dead_screen():
    """``/kiosk/watch`` tells kiosk-screen.service whether the screen's browser still loads
    the standby page; any LAN address loading ``/kiosk`` made it answer 200, so a crashed
    screen browser was not restarted while someone else's tab kept reloading. As when the
    kiosk runs, only the screen's own addresses count."""
    now = [1000.0]
    app = create_standby_app(_standby(), "gate-1", lambda: now[0], local=("127.0.0.1",))
    stranger = TestClient(app, client=("192.168.1.77", 40000))
    screen = TestClient(app, client=("127.0.0.1", 40001))
    assert stranger.get("/kiosk").status_code == 503  # the page itself is for anyone
    assert screen.get("/kiosk/watch").status_code == 503
    assert screen.get("/kiosk").status_code == 503
    assert screen.get("/kiosk/watch").status_code == 200
    now[0] += 61
    stranger.get("/kiosk")
    assert screen.get("/kiosk/watch").status_code == 503
