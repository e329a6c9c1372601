"""A resident forgotten leaves the daemon's memory too: the passage history (pass ids and
households for the quota and anti-passback) drops every passage a forget emptied, the
console's forget at once, another process's (``kiosk person forget`` beside the daemon) at
the daemon's lists check, as a restart would have rebuilt it from the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from guard_support import add_event, console_fixtures, hidden_fields, send
from support import exits_since

from checkpoint.app import Daemon
from kiosk.people import Person, forget

clock, core, app, alice, admin = console_fixtures(datetime(2026, 3, 2, 8, 30, tzinfo=UTC))

NAME, HOUSEHOLD, PASS = "Marlowe Qiuxiang", "7-1404", "feedfacecafe"
NEIGHBOUR_PASS = "0a0b0c0d0e0f"
ROOM = "/guard/community/people"
SINCE = datetime(2026, 3, 1, tzinfo=UTC)


def _passing(core, **fields):
    """A passage committed and recorded, as the engine does."""
    event = add_event(core, **fields)
    core.history.record(event)
    return event


def _walked(core, clock):
    _passing(core, holder=NAME, household=HOUSEHOLD, pass_id=PASS, direction="out")
    clock.advance(60)
    _passing(core, holder=NAME, household=HOUSEHOLD, pass_id=PASS, direction="in")
    clock.advance(60)
    _passing(core, holder="Ottoline", household=HOUSEHOLD, pass_id=NEIGHBOUR_PASS, direction="out")
    clock.advance(60)
    assert exits_since(core.history, HOUSEHOLD, SINCE) == 2


def _forgotten_here(core) -> bool:
    h = core.history
    gone = h.last_passage(PASS, "out") is None and h.last_passage(PASS, "in") is None
    return gone and exits_since(h, HOUSEHOLD, SINCE) == 1


def test_a_forget_beside_the_daemon_leaves_its_history_at_the_lists_check(core, clock):
    _walked(core, clock)
    forget(core.store, Person.of(name=NAME, household=HOUSEHOLD), clock.now(), actor="cli")
    assert not _forgotten_here(core)  # another process: the daemon does not know yet

    Daemon(core).lists_once()  # the daemon's check, every LISTS_CHECK_S

    assert _forgotten_here(core)
    assert core.history.last_passage(NEIGHBOUR_PASS, "out") is not None
    clock.advance(timedelta(minutes=1).total_seconds())
    Daemon(core).lists_once()  # nothing new: nothing more dropped
    assert exits_since(core.history, HOUSEHOLD, SINCE) == 1


def test_a_forget_at_the_console_leaves_the_history_at_once(core, clock, admin):
    _walked(core, clock)
    form = send(admin, f"{ROOM}/forget", {"csrf": admin.csrf, "name": NAME, "household": HOUSEHOLD})
    done = send(admin, f"{ROOM}/forget?lang=en", hidden_fields(form.text, "forget-form"))
    assert done.status_code == 200 and 'id="people-done"' in done.text
    assert _forgotten_here(core)
