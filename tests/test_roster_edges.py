"""The roster at its edges (session 32, bc069609).

* A removed guard's name given to a new account: the new volunteer was refused by the old
  guard's bar (a shift removal is kept by the guard's name). A bar is its account's: one the
  audit recorded before the name was last removed (``kiosk.accounts.ACCOUNT_SINCE``: its
  ``seq``, no clock's reading, b16a489e) bars none of the new one's, nor does a bar kept
  through a roster fault.
* One hand-edited row of the roster (a time that is no time, a field missing) raised in
  ``_shift``/``_handover``: the roster's page and every sign-in failed. The row is skipped,
  logged by its id (nothing personal), and named on the admin's page.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from guard_support import ADMIN_PW, GUARD_PW, TEST_SCRYPT_N, signed_in
from test_shift_removed_session import (
    BOB_PW,
    _add,
    _alices_shifts,
    _refusal,
    _remove,
    _shift,
    _sign_in,
)

from kiosk.accounts import hash_password
from kiosk.community import CommunityError
from kiosk.roster import Roster
from kiosk.store import StoreFault

from guard_support import console_fixtures  # isort: skip

#: 09:00 in Shanghai (the rig's site) on the console's clock.
clock, core, app, alice, admin = console_fixtures(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))


def _bob(core) -> None:
    core.accounts.add("bob", "guard", hash_password(BOB_PW, n=TEST_SCRYPT_N), "root")


def _bobs_shift(core):
    gate = core.config.site.kiosk_id
    day = datetime(2026, 2, 11, tzinfo=UTC)
    return core.ledgers.roster.shifts(gate, day, day + timedelta(days=3), "bob")


def _bobs_day_removed_bars_him(app, admin, core) -> None:
    """bob rostered 08:00-16:00 today and taken off it at 09:00 is refused at sign-in."""
    _add(admin, "bob", "2026-02-12T08:00", "2026-02-12T16:00")
    [day] = _bobs_shift(core)
    _remove(admin, day)
    _, refused = _sign_in(app, "bob", BOB_PW)
    assert refused.status_code == 403 and "was removed by root" in _refusal(refused)


def test_a_new_account_of_a_removed_guards_name_is_not_barred_by_the_old_bars(
    app, admin, core, clock
):
    _bob(core)
    _add(admin, "bob", "2026-02-12T08:00", "2026-02-12T16:00")
    [day] = _bobs_shift(core)
    _remove(admin, day)
    _, refused = _sign_in(app, "bob", BOB_PW)
    assert refused.status_code == 403  # the old bob: barred, as ever
    core.accounts.disable("bob", "root")
    clock.advance(600)  # 09:10: a new volunteer is given the name
    _bob(core)
    _, signed = _sign_in(app, "bob", BOB_PW)
    assert signed.url.path == "/guard", _refusal(signed)


@pytest.mark.parametrize("kept_by", ["removal", "refusal"])
def test_while_the_roster_cannot_be_read_the_old_guards_kept_bar_is_not_the_new_ones(
    app, admin, core, clock, monkeypatch, kept_by
):
    _bob(core)
    _add(admin, "bob", "2026-02-12T08:00", "2026-02-12T16:00")
    [day] = _bobs_shift(core)
    _remove(admin, day)  # kept in memory as bob's bar, for a roster fault
    if kept_by == "refusal":  # the bar the roster's read gave his refused sign-in, kept
        _sign_in(app, "bob", BOB_PW)
    core.accounts.disable("bob", "root")
    clock.advance(600)
    _bob(core)

    def locked(*args, **kwargs):
        raise StoreFault("store_fault", "database is locked")

    monkeypatch.setattr(Roster, "barred", locked)
    tablet, signed = _sign_in(app, "bob", BOB_PW)
    assert signed.url.path == "/guard", signed.url  # not the login page again
    # Her session is not thrown out by the old guard's bar kept for the fault either, nor is
    # she told his shift (its times, who removed it) on the login page.
    assert tablet.get("/guard", follow_redirects=False).status_code == 200
    assert "was removed by root" not in tablet.get("/guard/login?lang=en").text


def test_an_account_made_on_a_clock_reading_ahead_keeps_its_bars(app, admin, core, clock):
    """bob's account added while the clock read a month ahead (not synchronised yet); NTP
    steps it back: the removal of his shift under way still bars him (no clock's stamp
    says where his account begins)."""
    real = clock.now()
    clock.is_synced = False
    clock.set_wall(real + timedelta(days=30))
    _bob(core)
    clock.set_wall(real)
    clock.is_synced = True
    clock.advance(60)
    _bobs_day_removed_bars_him(app, admin, core)


def test_a_reset_stamped_by_the_release_before_keeps_the_bars_made_before_it(
    app, admin, core, clock
):
    """The release before 2026-12-07's evening wrote created_at again at each password
    reset or role change: after the upgrade, a removal made before such a reset still bars
    the same guard (her name was never removed)."""
    _bob(core)
    _add(admin, "bob", "2026-02-12T08:00", "2026-02-12T16:00")
    [day] = _bobs_shift(core)
    _remove(admin, day)
    clock.advance(300)
    reset_at = clock.now().isoformat()  # what the old release's reset wrote
    core.store.submit(
        lambda db: db.execute(
            "update guard_accounts set created_at = ? where name = 'bob'", [reset_at]
        )
    )
    clock.advance(300)
    _, refused = _sign_in(app, "bob", BOB_PW)
    assert refused.status_code == 403 and "was removed by root" in _refusal(refused)


def test_a_new_password_keeps_the_guards_bars(app, admin, core, clock):
    _bob(core)
    _add(admin, "bob", "2026-02-12T08:00", "2026-02-12T16:00")
    [day] = _bobs_shift(core)
    _remove(admin, day)
    clock.advance(600)
    _bob(core)  # the same account given a new password: the same guard
    _, refused = _sign_in(app, "bob", BOB_PW)
    assert refused.status_code == 403 and "was removed by root" in _refusal(refused)


def test_a_bar_made_after_the_new_account_is_its_own(app, admin, core, clock):
    _bob(core)
    core.accounts.disable("bob", "root")
    clock.advance(60)
    _bob(core)
    clock.advance(60)
    _bobs_day_removed_bars_him(app, admin, core)


def test_a_removed_guards_shift_tidied_away_bars_no_new_volunteer(app, admin, core, clock):
    """bob left: the admin removes his account, then his shift from the roster (tidying);
    a new volunteer given the name 'bob' is signed in, not refused and told of the old
    guard's shift (b16a489e began her account at the name's last removal, so the tidying
    removal, recorded after it, was read as hers). Her account begins at the write that
    added it; a removal of a shift of hers after that is hers."""
    _bob(core)
    _add(admin, "bob", "2026-02-12T08:00", "2026-02-12T16:00")
    core.accounts.disable("bob", "root")
    clock.advance(60)
    [day] = _bobs_shift(core)
    _remove(admin, day)
    clock.advance(600)
    _bob(core)
    clock.advance(60)
    _, signed = _sign_in(app, "bob", BOB_PW)
    assert signed.url.path == "/guard", _refusal(signed)
    _bobs_day_removed_bars_him(app, admin, core)


def test_a_reset_after_the_new_account_keeps_its_bars(app, admin, core, clock):
    """The new bob's own removal bars her through a new password (another
    ``guard_account_set`` row: the first after the name's removal is where she begins)."""
    _bob(core)
    core.accounts.disable("bob", "root")
    clock.advance(60)
    _bob(core)
    _add(admin, "bob", "2026-02-12T08:00", "2026-02-12T16:00")
    [day] = _bobs_shift(core)
    _remove(admin, day)
    clock.advance(60)
    _bob(core)  # a new password
    _, refused = _sign_in(app, "bob", BOB_PW)
    assert refused.status_code == 403 and "was removed by root" in _refusal(refused)


def _hand_edit(core, action: str, detail: str) -> None:
    core.store.submit(
        lambda db: db.execute("update audit set detail = ? where action = ?", [detail, action])
    )


def test_a_removal_row_edited_by_hand_fails_no_sign_in(app, admin, core, clock):
    """carol, who left, was removed; her ``guard_account_disabled`` row's detail (a personal
    field, so rewritable) edited by hand into text that is not JSON: every sign-in and every
    signed-in guard's page answered 500 (sqlite's "malformed JSON"). The row is nobody's."""
    pw = hash_password(BOB_PW, n=TEST_SCRYPT_N)
    core.accounts.add("carol", "guard", pw, "root")
    core.accounts.add("dave", "guard", pw, "root")
    core.accounts.disable("carol", "root")
    with signed_in(app, "alice") as tablet:
        _hand_edit(core, "guard_account_disabled", "carol left (edited)")
        assert tablet.get("/guard", follow_redirects=False).status_code == 200
    for name, password in (("alice", GUARD_PW), ("dave", BOB_PW), ("root", ADMIN_PW)):
        _, signed = _sign_in(app, name, password)
        assert signed.url.path == "/guard", (name, signed.status_code)
    assert admin.get("/guard/community/handover").status_code == 200
    assert core.accounts.since("carol") == 0  # her row is none of her name's now


def test_a_removal_row_edited_by_hand_lifts_no_bar(app, admin, core, clock):
    """A bad row read as nobody's: the name's account begins where it did before any
    removal, so the old guard's bars still bar the name added again (never a pass)."""
    _bob(core)
    _add(admin, "bob", "2026-02-12T08:00", "2026-02-12T16:00")
    [day] = _bobs_shift(core)
    _remove(admin, day)
    core.accounts.disable("bob", "root")
    _hand_edit(core, "guard_account_disabled", "bob left (edited)")
    clock.advance(600)
    _bob(core)
    _, refused = _sign_in(app, "bob", BOB_PW)
    assert refused.status_code == 403 and "was removed by root" in _refusal(refused)


def test_where_an_account_begins_is_read_by_the_indexes_of_its_name(core):
    """Every request of a guard's console reads where her account begins
    (``ACCOUNT_SINCE``): by the indexes of the name's removals and adds, not a scan of the
    audit's every removal or every add of every name."""
    from kiosk.accounts import ACCOUNT_SINCE

    sql = f"explain query plan select {ACCOUNT_SINCE}"
    plan = [str(row[-1]) for row in core.store.reader().execute(sql, ["bob"])]
    assert any("USING INDEX audit_account_removals (<expr>=?)" in r for r in plan), plan
    assert any("USING INDEX audit_account_adds (<expr>=? AND rowid>?)" in r for r in plan), plan
    scans = [r for r in plan if r.startswith("SCAN")]
    assert set(scans) <= {"SCAN CONSTANT ROW", "SCAN asked"}, plan  # the name asked, no row


def _edit_shift(core, shift_id: int, column: str, value) -> None:
    core.store.submit(
        lambda db: db.execute(
            f"update roster_shifts set {column} = ? where id = ?",  # noqa: S608 - a test's
            [value, shift_id],
        )
    )


def _unreadable(page) -> str:
    assert page.status_code == 200
    return page.text.split('id="unreadable"')[1].split("</ul>")[0]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("starts_at", "2026-02-12T00:00:00+08:00 (by hand)"),
        ("ends_at", "2026-02-12T9"),
        ("guard", None),
        ("starts_at", "2026-02-12T00:00:00"),
    ],  # fmt: skip
)
def test_a_hand_edited_shift_row_is_skipped_logged_and_named(
    app, admin, core, clock, caplog, column, value
):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    _shift(admin, "2026-02-13T08:00", "2026-02-13T16:00")
    edited, kept = _alices_shifts(core)
    _edit_shift(core, edited.id, column, value)
    caplog.set_level(logging.WARNING, logger="kiosk.roster")
    with signed_in(app, "alice") as tablet:  # the sign-in reads her shifts
        assert tablet.get("/guard", follow_redirects=False).status_code == 200
    page = admin.get("/guard/community/handover?lang=en")
    assert f"shift {edited.id} cannot be read" in _unreadable(page)
    assert f'data-shift="{kept.id}"' in page.text and f'data-shift="{edited.id}"' not in page.text
    said = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert said == [f"roster: shift row {edited.id} cannot be read; it is skipped"]  # once
    with pytest.raises(CommunityError, match=f"shift {edited.id} cannot be read"):
        core.ledgers.roster.shift(edited.id)


@pytest.mark.parametrize("column", ["starts_at", "ends_at"])
def test_a_shift_whose_time_was_erased_is_named_to_the_admin(app, admin, core, column):
    """A time erased or overwritten with words is found by no read by time: nothing fails,
    but the shift is gone from the page without a word. It is named to the admin."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    [edited] = _alices_shifts(core)
    _edit_shift(core, edited.id, column, None)
    page = admin.get("/guard/community/handover?lang=en")
    assert f"shift {edited.id} cannot be read" in _unreadable(page)
    _edit_shift(core, edited.id, column, "tomorrow")
    page = admin.get("/guard/community/handover?lang=en")
    assert _unreadable(page).count(f"shift {edited.id} cannot be read") == 1


def test_the_unreadable_rows_are_named_to_the_admin_only(app, admin, alice, core):
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    [edited] = _alices_shifts(core)
    _edit_shift(core, edited.id, "ends_at", "soon")
    assert 'id="unreadable"' not in alice.get("/guard/community/handover").text
    assert 'id="unreadable"' in admin.get("/guard/community/handover").text


def _handover_row(core, since: str) -> int:
    row = {"gate": core.config.site.kiosk_id, "outgoing": "alice", "incoming": "root",
           "since": since, "opened_at": "2026-02-12T00:30:00+00:00", "summary": "{}"}  # fmt: skip
    return int(core.store.submit(lambda db: db.table("handovers").insert(row).last_rowid))


def test_a_hand_edited_handover_row_is_skipped_and_named(app, admin, core):
    good = _handover_row(core, "2026-02-12T00:00:00+00:00")
    bad = _handover_row(core, "midnight")
    page = admin.get("/guard/community/handover?lang=en")
    assert f"handover {bad} cannot be read" in _unreadable(page)
    assert f'data-handover="{good}"' in page.text
    assert [h.id for h in core.ledgers.roster.handovers(core.config.site.kiosk_id)] == [good]
    with pytest.raises(CommunityError, match=f"handover {bad} cannot be read"):
        core.ledgers.roster.handover(bad)


@pytest.mark.parametrize(
    "ends_at",
    [
        "9999-12-31T23:30:00+00:00",  # 'for ever': a day on is no date
        "9999-12-31T12:00:00-12:00",  # its UTC time is in the year 10000
        "2026-03-12T08:00:00+08:00",  # a month long: no shift is longer than MAX_SHIFT
    ],
)
def test_a_shift_row_at_the_calendars_edge_is_skipped_and_named(app, admin, alice, core, ends_at):
    """A hand edit's time that is a time, but at the calendar's edge, was read and then
    overflowed: the roster's page and the guard's sign-in failed with a server error."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    [edited] = _alices_shifts(core)
    _edit_shift(core, edited.id, "ends_at", ends_at)
    page = admin.get("/guard/community/handover?lang=en")
    assert f"shift {edited.id} cannot be read" in _unreadable(page)
    assert alice.get("/guard/community/handover").status_code == 200
    _, signed = _sign_in(app, "alice")
    assert signed.url.path == "/guard"
    with pytest.raises(CommunityError, match=f"shift {edited.id} cannot be read"):
        core.ledgers.roster.shift(edited.id)


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00+00:00"])
def test_a_handover_row_at_the_calendars_edge_is_skipped_and_named(app, admin, core, since):
    good = _handover_row(core, "2026-02-12T00:00:00+00:00")
    bad = _handover_row(core, since)
    page = admin.get("/guard/community/handover?lang=en")
    assert f"handover {bad} cannot be read" in _unreadable(page)
    assert f'data-handover="{good}"' in page.text
