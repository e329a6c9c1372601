"""The days a shift is rostered, and the removals' index.

* A shift could be rostered at any date: one starting 0001-01-01 was written, then could not
  be read ("cannot be read"), and one of 1999 or far ahead was on no page's window: gone from
  the roster without a word. A shift starts from 2000-01-01 and ends no further ahead than
  the log keeps a removal of it (``store.retention_days``, its handover's hour included);
  a stored one outside those days (from before the rule) is named on the admin's page.
* The purge nulls a removal's detail ``retention_days`` after it was made: a shift rostered
  further ahead and removed was forgotten, the guard barred no longer, while it was still to
  come. The furthest shift rostered now is over before its removal can be purged.
* The index of a guard's removals (``audit_shift_removals``) held every removal's detail as
  JSON: a log holding one edited by hand into other text did not open (the migration failed
  on "malformed JSON"), and on a log with the index such an edit was refused by the store.
  Only rows whose detail is JSON are in it now; one that is not names no guard, bars nobody.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from guard_support import post, refused_with
from test_roster_edges import _hand_edit, _unreadable
from test_shift_removed_session import BOB_PW, _add, _alices_shifts, _remove, _shift, _sign_in

from kiosk import lists, peers, stats
from kiosk.accounts import hash_password
from kiosk.clock import FakeClock
from kiosk.community import CommunityError
from kiosk.ledgers import MIGRATIONS
from kiosk.retention import purge
from kiosk.roster import HANDOVER_GRACE, Roster
from kiosk.store import EventLog

from guard_support import ADMIN_PW, TEST_SCRYPT_N, console_fixtures  # isort: skip

#: 09:00 in Shanghai (the rig's site) on the console's clock.
clock, core, app, alice, admin = console_fixtures(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))

H = timedelta(hours=1)
TOO_FAR = "a shift is rostered at most 30 days ahead, its handover's hour included"


@pytest.mark.parametrize("starts", ["0001-01-01T00:00:00+00:00", "1999-12-31T16:00:00+00:00"])
def test_a_shift_dated_before_2000_is_refused_and_nothing_written(core, starts):
    """0001-01-01 was written, then refused as a row that "cannot be read"; 1999 taken."""
    gate, start = core.config.site.kiosk_id, datetime.fromisoformat(starts)
    with pytest.raises(CommunityError, match="^a shift starts on 2000-01-01 or later$"):
        core.ledgers.roster.add_shift(gate, "alice", start, start + 8 * H, "root")
    assert core.store.reader().execute("select count(*) from roster_shifts").fetchone()[0] == 0


def test_a_shift_further_ahead_than_a_removal_is_kept_is_refused_on_the_console(admin, core):
    """09:00 on 12 February, retention 30 days: the latest end is 08:00 on 14 March (its
    handover's hour then ends as the log could purge a removal made now)."""
    assert core.config.store.retention_days == 30
    posted = post(admin, "/guard/community/shifts", admin.csrf, guard="alice",
                  starts="2026-03-14T00:01", ends="2026-03-14T08:01")  # fmt: skip
    said = refused_with(admin, posted) or ""  # the admin's page is in Chinese
    assert posted.status_code == 400 and said.startswith("班次最多只能提前 30 天排定"), said
    gate, far = core.config.site.kiosk_id, datetime(2026, 3, 1, tzinfo=UTC)
    assert core.ledgers.roster.shifts(gate, far, far + timedelta(days=30)) == []
    _shift(admin, "2026-03-14T00:00", "2026-03-14T08:00")  # ends at the latest: taken


def test_the_console_says_the_days_refusals_in_chinese():
    from ui import core_words

    said = core_words.refusal_text("zh-CN", TOO_FAR + ": the log keeps a removal no longer")
    assert said.startswith("班次最多只能提前 30 天排定"), said
    early = core_words.refusal_text("zh-CN", "a shift starts on 2000-01-01 or later")
    assert early == "班次开始日期不得早于 2000-01-01"


def _stored(core, starts: str, ends: str) -> int:
    row = {"gate": core.config.site.kiosk_id, "guard": "alice", "starts_at": starts,
           "ends_at": ends, "created_by": "root"}  # fmt: skip
    return int(core.store.submit(lambda db: db.table("roster_shifts").insert(row).last_rowid))


def test_a_stored_shift_outside_the_rostered_days_is_named_to_the_admin(admin, alice, core):
    """Rows from before the rule (or edited by hand): the page's window (a day back to the
    rostered days' end) never showed them, and nothing said so. One within those days is
    listed, with its Remove button (until the page listed the rostered days, one 17 days
    ahead was neither listed nor named). One ahead of those days, not over, is listed with
    its Remove button too (it was named only, and could not be removed from the console)."""
    early = _stored(core, "1999-06-01T00:00:00+00:00", "1999-06-01T08:00:00+00:00")
    edge = _stored(core, "0001-01-01T00:00:00+00:00", "0001-01-01T08:00:00+00:00")
    ahead = _stored(core, "2026-06-01T00:00:00+00:00", "2026-06-01T08:00:00+00:00")
    fine = _stored(core, "2026-03-01T00:00:00+00:00", "2026-03-01T08:00:00+00:00")
    named = _unreadable(admin.get("/guard/community/handover?lang=en"))
    days = "is outside the days a shift is rostered (2000-01-01 to 30 days ahead)"
    assert f"shift {early} (alice, 1999-06-01 00:00 UTC) {days}" in named, named
    assert f"shift {edge} cannot be read" in named
    assert f"shift {fine} " not in named and named.count("<li>") == 2, named
    page = admin.get("/guard/community/handover?lang=en").text
    assert f'data-shift="{fine}"' in page and f'data-shift="{ahead}"' in page
    assert "不在可排班的日期内" in _unreadable(admin.get("/guard/community/handover?lang=zh-CN"))
    assert 'id="unreadable"' not in alice.get("/guard/community/handover").text


def test_a_shift_rostered_weeks_ahead_is_listed_with_its_remove_button(admin, core):
    """Taken 17 days ahead (303), it was neither listed nor named on the roster's page (its
    window ended a week ahead) and had no Remove button until within a week."""
    _shift(admin, "2026-03-01T09:00", "2026-03-01T17:00")
    _shift(admin, "2026-02-14T09:00", "2026-02-14T17:00")  # 2 days ahead, listed as before
    gate = core.config.site.kiosk_id
    page = admin.get("/guard/community/handover?lang=en").text
    for shift in core.ledgers.roster.shifts(gate, datetime(2026, 2, 13, tzinfo=UTC), _MARCH):
        assert f'action="/guard/community/shifts/{shift.id}/remove"' in page, shift
    assert 'id="more-shifts"' not in page
    far = core.ledgers.roster.shifts(gate, datetime(2026, 2, 20, tzinfo=UTC), _MARCH)[0]
    _remove(admin, far)
    assert core.ledgers.roster.shifts(gate, far.starts_at, far.ends_at) == []


_MARCH = datetime(2026, 3, 2, tzinfo=UTC)


def test_the_roster_page_lists_so_many_shifts_and_says_how_many_more(admin, core, monkeypatch):
    """The rostered days may hold many shifts (a retention of years): the page lists the
    first ``SHIFTS_LISTED`` by start, and says how many more there are after the last."""
    from kiosk import roster as roster_module
    from ui.guard.community import handover

    monkeypatch.setattr(roster_module, "SHIFTS_LISTED", 2)
    monkeypatch.setattr(handover, "SHIFTS_LISTED", 2)
    for day in ("2026-02-20", "2026-02-21", "2026-03-01"):
        _shift(admin, f"{day}T09:00", f"{day}T17:00")
    page = admin.get("/guard/community/handover?lang=en").text
    assert page.count("data-shift=") == 2 and "2026-03-01" not in page
    more = "1 more shifts (starting after 2026-02-21 09:00) are not listed: the page lists 2"
    assert more in page, page


@pytest.fixture
def log(tmp_path):
    at = FakeClock(start=datetime(2026, 2, 12, tzinfo=UTC))
    sets = [lists.MIGRATIONS, stats.MIGRATIONS, *MIGRATIONS, peers.MIGRATIONS]
    store = EventLog(tmp_path / "k.db", "gate-1", at, "NORMAL", migrations=sets)
    yield store.open(), at
    store.close()


def test_the_furthest_shift_rostered_is_over_before_its_removal_can_be_purged(log):
    """Rostered 40 days ahead and removed at once, the removal's detail was purged on day 31
    and the guard was barred no more on day 40, during the shift. The furthest shift taken
    now, removed now, bars its guard to its handover hour's end, the purge run each hour."""
    store, at = log
    roster = Roster(store, at, retention=timedelta(days=30))
    latest = roster.reach()
    assert latest == at.now() + timedelta(days=30) - HANDOVER_GRACE
    with pytest.raises(CommunityError, match=TOO_FAR):
        roster.add_shift("gate-1", "bob", latest - 8 * H, latest + timedelta(seconds=1), "root")
    shift = roster.add_shift("gate-1", "bob", latest - 8 * H, latest, "root")
    roster.remove_shift(shift.id, "root")
    last = latest + HANDOVER_GRACE - timedelta(seconds=1)  # the bar's last moment
    for day in range(1, 31):
        at.set_wall(min(last, datetime(2026, 2, 12, tzinfo=UTC) + timedelta(days=day)))
        purge(store, 30, at.now(), tz="Asia/Shanghai")
    gone = roster.barred("gate-1", "bob", last, last + timedelta(seconds=1))
    assert gone is not None and gone.by == "root"


@pytest.mark.parametrize(("ahead", "purged_on", "days"), [(20, 8, 7), (2, 1, 0)])
def test_a_purge_shorter_than_retention_keeps_a_removal_while_it_bars(log, ahead, purged_on, days):
    """``kiosk purge --older-than 7`` (or 0) nulled a removal's detail while its shift was
    still to come: during the shift its guard was barred no more. The detail is kept while
    it bars (the shift and its handover's hour), and purged by the first purge after."""
    store, at = log
    roster = Roster(store, at, retention=timedelta(days=30))
    start = datetime(2026, 2, 12, tzinfo=UTC) + timedelta(days=ahead)
    shift = roster.add_shift("gate-1", "bob", start, start + 8 * H, "root")
    roster.remove_shift(shift.id, "root")
    at.set_wall(datetime(2026, 2, 12, tzinfo=UTC) + timedelta(days=purged_on))
    purge(store, days, at.now(), tz="Asia/Shanghai")
    during = start + 8 * H + HANDOVER_GRACE - timedelta(seconds=1)  # the bar's last moment
    at.set_wall(during)
    purge(store, days, at.now(), tz="Asia/Shanghai")
    gone = roster.barred("gate-1", "bob", during, during + timedelta(seconds=1))
    assert gone is not None and gone.by == "root"
    at.set_wall(during + timedelta(seconds=1))  # the bar is over: the detail goes
    purge(store, days, at.now(), tz="Asia/Shanghai")
    detail = "select detail from audit where action = 'roster.shift_remove'"
    assert store.reader().execute(detail).fetchone()[0] is None


def test_a_clock_not_set_yet_rosters_ahead_as_before(log):
    """A Pi booted without network reads 1970: what is ahead is not known (nor does the
    purge run); a shift is taken, the start's rule still holds."""
    store, at = log
    at.set_wall(datetime(1970, 1, 1, tzinfo=UTC))
    at.is_synced = False
    roster = Roster(store, at)
    assert roster.reach() is None
    day = datetime(2026, 2, 12, tzinfo=UTC)
    assert roster.add_shift("gate-1", "bob", day, day + 8 * H, "root").guard == "bob"
    with pytest.raises(CommunityError, match="2000-01-01"):
        roster.add_shift("gate-1", "bob", at.now(), at.now() + 8 * H, "root")


def test_a_log_holding_a_removal_detail_that_is_not_json_opens(log, tmp_path):
    """A log from before the index, one removal's detail edited by hand into other text: the
    index's migration failed ("malformed JSON") and the log did not open."""
    store, at = log
    roster = Roster(store, at)
    day = datetime(2026, 2, 13, tzinfo=UTC)
    roster.remove_shift(roster.add_shift("gate-1", "bob", day, day + 8 * H, "root").id, "root")
    store.close()
    db = sqlite3.connect(tmp_path / "k.db")
    db.execute("drop index audit_shift_removals")
    db.execute("delete from _sqlite_migrations where migration_set = 'kiosk.roster'"
               " and name in ('m003_shift_removals', 'm004_shift_removals_json')")  # fmt: skip
    db.execute("update audit set detail = 'removed (edited)' where action = 'roster.shift_remove'")
    db.commit()
    db.close()
    sets = [lists.MIGRATIONS, stats.MIGRATIONS, *MIGRATIONS, peers.MIGRATIONS]
    again = EventLog(tmp_path / "k.db", "gate-1", at, "NORMAL", migrations=sets).open()
    try:
        assert Roster(again, at).barred("gate-1", "bob", day, day + H) is None  # nobody's
        plan = (
            again.reader()
            .execute("select sql from sqlite_master where name = 'audit_shift_removals'")
            .fetchone()
        )
        assert "json_valid(detail)" in plan[0]
    finally:
        again.close()


def test_a_removal_detail_edited_into_other_text_fails_nothing(app, admin, core):
    """On a log with the index, the edit itself was refused by the store; now the row names
    no guard: every page and sign-in goes on, a guard's other removals still bar her."""
    pw = hash_password(BOB_PW, n=TEST_SCRYPT_N)
    core.accounts.add("bob", "guard", pw, "root")
    _add(admin, "bob", "2026-02-12T08:00", "2026-02-12T16:00")
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    gate, day = core.config.site.kiosk_id, datetime(2026, 2, 11, tzinfo=UTC)
    [bobs] = core.ledgers.roster.shifts(gate, day, day + timedelta(days=3), "bob")
    _remove(admin, bobs)
    _hand_edit(core, "roster.shift_remove", "removed (edited)")
    [alices] = _alices_shifts(core)
    _remove(admin, alices)
    assert admin.get("/guard/community/handover").status_code == 200
    _, refused = _sign_in(app, "alice")
    assert refused.status_code == 403  # her own removal, as JSON, still bars her
    _, signed = _sign_in(app, "root", ADMIN_PW)
    assert signed.url.path == "/guard"


def test_the_shifts_outside_the_days_are_read_by_the_rosters_index(core):
    """The admin's page asks at each view: two ranges of the roster's gate-and-start index
    (before 2000, near the latest end and after), not the roster's whole history."""
    from kiosk import roster

    sql = "explain query plan " + roster._UNSHOWN
    plan = [str(r[-1]) for r in core.store.reader().execute(sql, ["gate-1", "a", "b", 50])]
    index = "USING INDEX idx_roster_shifts_gate_starts_at"
    assert any(f"{index} (gate=? AND starts_at<?)" in r for r in plan), plan
    assert any(f"{index} (gate=? AND starts_at>?)" in r for r in plan), plan
    assert not [r for r in plan if r.startswith("SCAN")], plan
