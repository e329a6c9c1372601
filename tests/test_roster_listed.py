"""What the roster's page lists: every shift not over, each with its Remove button, and how
many more there are.

* A shift stored further ahead than the days a shift is rostered now (rostered before that
  rule) was only named to the admin ("the page does not show it"), never listed: it had no
  Remove button, and the admin could not take it off the roster from the console.
* The count of the shifts not listed ("N more shifts") took in rows that cannot be read
  (edited by hand), which the page never shows; and those among the first rows took the
  places of shifts in the list. The page lists and counts shifts; the rows that cannot be
  read it names apart, to the admin.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_roster_edges import _unreadable
from test_roster_reach import _stored
from test_shift_removed_session import _remove, _shift

from guard_support import console_fixtures  # isort: skip

#: 09:00 in Shanghai (the rig's site) on the console's clock: shifts end 30 days ahead at most.
clock, core, app, alice, admin = console_fixtures(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))

PAGE = "/guard/community/handover?lang=en"


def _remove_button(shift_id: int) -> str:
    return f'action="/guard/community/shifts/{shift_id}/remove"'


def test_a_shift_stored_beyond_the_rostered_days_is_listed_and_removed(admin, core):
    """Rostered for June before a shift could end at most 30 days ahead: it was named ("the
    page does not show it") with no Remove button. Now listed, removable, and removed."""
    ahead = _stored(core, "2026-06-01T00:00:00+00:00", "2026-06-01T08:00:00+00:00")
    later = _stored(core, "2027-01-04T00:00:00.000000Z", "2027-01-04T08:00:00.000000Z")
    page = admin.get(PAGE).text
    for sid in (ahead, later):
        assert f'data-shift="{sid}"' in page and _remove_button(sid) in page, page
    assert 'id="unreadable"' not in page  # listed: nothing left to name
    [june] = core.ledgers.roster.shifts(
        core.config.site.kiosk_id, datetime(2026, 6, 1, tzinfo=UTC), _JUNE_2
    )
    _remove(admin, june)
    assert core.ledgers.roster.shifts(june.gate, june.starts_at, june.ends_at) == []
    assert _remove_button(ahead) not in admin.get(PAGE).text


_JUNE_2 = datetime(2026, 6, 2, tzinfo=UTC)


def test_a_shift_before_2000_on_a_clock_reading_1970_has_no_remove_button(admin, core, clock):
    """A clock not set reads 1970: a stored 1999 shift has not ended by it, but no form sends
    a 1999 time back (its Remove would be refused as out of date); it stays named."""
    clock.set_wall(datetime(1970, 1, 1, 1, tzinfo=UTC))
    clock.is_synced = False
    early = _stored(core, "1999-06-01T00:00:00+00:00", "1999-06-01T08:00:00+00:00")
    page = admin.get(PAGE).text
    assert _remove_button(early) not in page
    assert f"shift {early} (alice, 1999-06-01 00:00 UTC) is outside" in _unreadable(admin.get(PAGE))


def _damaged(core, day: int) -> int:
    """A shift's row of that day of February whose end a hand edit left no time."""
    return _stored(core, f"2026-02-{day}T00:00:00.000000Z", f"2026-02-{day}T9")


@pytest.fixture
def two_listed(monkeypatch):
    from kiosk import roster as roster_module
    from ui.guard.community import handover

    monkeypatch.setattr(roster_module, "SHIFTS_LISTED", 2)
    monkeypatch.setattr(handover, "SHIFTS_LISTED", 2)


def test_the_shifts_not_listed_are_counted_without_rows_that_cannot_be_read(
    two_listed, admin, alice, core
):
    """Two listed at most: three shifts, a row that cannot be read among the first and two
    after the last listed. The page said "3 more shifts" and listed one; it lists two, says
    one more, and names the three rows to the admin."""
    for day in ("2026-02-20", "2026-02-21", "2026-03-01"):
        _shift(admin, f"{day}T09:00", f"{day}T17:00")
    first, after = _damaged(core, 13), [_damaged(core, d) for d in (22, 23)]
    page = admin.get(PAGE).text
    assert page.count("data-shift=") == 2 and "2026-02-21 09:00" in page, page
    more = "1 more shifts (starting after 2026-02-21 09:00) are not listed: the page lists 2"
    assert more in page, page
    named = _unreadable(admin.get(PAGE))
    for sid in (first, *after):
        assert f"shift {sid} cannot be read" in named, named
    guards = alice.get(PAGE).text  # a guard's page: the same list and count, nothing named
    assert guards.count("data-shift=") == 2 and more in guards
    assert 'id="unreadable"' not in guards


def test_no_more_is_said_when_only_rows_that_cannot_be_read_follow(two_listed, admin, core):
    """Two shifts and a row that cannot be read after them: nothing more to list."""
    for day in ("2026-02-20", "2026-02-21"):
        _shift(admin, f"{day}T09:00", f"{day}T17:00")
    bad = _damaged(core, 22)
    page = admin.get(PAGE).text
    assert page.count("data-shift=") == 2 and 'id="more-shifts"' not in page, page
    assert f"shift {bad} cannot be read" in _unreadable(admin.get(PAGE))
