"""An overdue retention purge is said on the console, not only in the journal: a Pi whose
clock NTP never set refuses every purge (it cannot date what is old), and the personal data
past retention stayed, said only by a warning line an hour in the journal and by health's
``retention.last_run`` nobody reads (docs/operations.md, *How the clock is kept*)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from guard_support import ADMIN_PW, console_fixtures, signed_in

from checkpoint.app import Daemon
from checkpoint.notify import Notifier
from kiosk.alarms import RETENTION_ALARM
from kiosk.retention import OVERDUE_AFTER, overdue

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
clock, core, app, alice, admin = console_fixtures(START)


def retention_card(app) -> dict | None:
    """The card an admin signed in now sees (a session does not last the two days)."""
    with signed_in(app, "root", ADMIN_PW) as admin:
        alarms = admin.get("/guard/api/feed", params={"lang": "en"}).json()["alarms"]
    return next((a for a in alarms if a["key"] == RETENTION_ALARM), None)


def test_purges_refused_for_two_days_raise_a_card_that_goes_after_the_next_purge(core, clock, app):
    """Before: without NTP the daemon's purges were refused hour after hour, and the console
    said nothing; now a standing card, once they have been refused for two days by the
    monotonic clock (an unset wall clock tells no time), until a purge succeeds."""
    clock.is_synced = False
    daemon = Daemon(core, notifier=Notifier(None))
    daemon.purge_once()
    clock.advance(OVERDUE_AFTER.total_seconds() - 60)
    daemon.purge_once()
    assert core.health()["retention"]["overdue"] is None and retention_card(app) is None
    clock.advance(60)
    daemon.purge_once()
    late = core.health()["retention"]["overdue"]
    assert late == {"last_run": None, "waiting": 0, "cause": "unsynchronised"}
    card = retention_card(app)
    assert card["title"] == "Personal data not deleted on time"
    assert "no network time (NTP)" in card["detail"] and "last purge: never" in card["detail"]
    assert "Tell the admin" in card["todo"]
    clock.is_synced = True
    daemon.purge_once()
    assert core.health()["retention"]["overdue"] is None and retention_card(app) is None


def test_a_last_purge_two_days_old_is_overdue_after_a_restart(core, clock, app):
    """A restarted daemon has not seen its purges refused yet: the last run's time says it."""
    Daemon(core, notifier=Notifier(None)).purge_once()
    ran = clock.now().astimezone(UTC).isoformat()
    clock.advance(OVERDUE_AFTER.total_seconds())
    late = core.health()["retention"]["overdue"]
    assert late == {"last_run": ran, "waiting": 0, "cause": "not_run"}
    assert "no purge has completed for over two days" in retention_card(app)["detail"]


def test_events_kept_for_the_clock_for_two_days_are_overdue():
    now = START + timedelta(days=40)
    since = (now - OVERDUE_AFTER).isoformat()
    last = {"at": now.isoformat(), "waiting_for_clock": 7, "waiting_since": since}
    assert overdue(last, now) == {"last_run": now.isoformat(), "waiting": 7,
                                  "cause": "waiting_for_clock"}  # fmt: skip
    assert overdue(last | {"waiting_since": now.isoformat()}, now) is None
    assert overdue({"at": now.isoformat()}, now) is None
    assert overdue(None, now) is None
    assert overdue(None, now, OVERDUE_AFTER.total_seconds(), "set_back")["cause"] == "set_back"
