"""A stored JSON column whose text is no longer JSON (an SD card's bit rot, a hand edit:
``kiosk verify-log``'s "unreadable value") where SQL reads one of its fields: SQLite's
``json_extract`` refuses such text with ``malformed JSON`` and fails the whole query, whatever
row it was after. Each row is damaged as a card damages it (an UPDATE on the SQLite file, the
append-only triggers dropped as an editor would) and read back through the user's path: the
console's visitor search, a sign-in, the day's report, the nightly retention, the alarm desk
after a restart, a person's forget. Nothing is written outside ``tmp_path``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient
from guard_support import BASE, console_fixtures, login, make_app, post, signed_in
from test_damaged_json_sites import _edit, _feed_with_damaged_reasons
from test_damaged_rows import damage
from test_guard_registry import registration
from test_retention_revocations import REASON, TZ, revocation
from test_shift_removed_bars_hold import _remove, _shift, _shifts
from test_shift_removed_session import _sign_in

from kiosk import accounts
from kiosk.accounts import AccountStore, hash_password
from kiosk.clock import FakeClock
from kiosk.lists import ListStore
from kiosk.people import Person, find, forget
from kiosk.retention import purge
from kiosk.stats import daily_report
from kiosk.store import EventDraft, EventLog

#: The console's fixtures (a guard and an admin signed in), 09:00 in Shanghai.
clock, core, app, alice, admin = console_fixtures(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))

FAST = 2**10  # test-only scrypt cost
#: A guard's deny of a fever found by hand: no bus alarm recorded on it (no ``alarm:`` flag).
GUARDS_FEVER_DENY = EventDraft(
    direction="in",
    decision="manual_deny",
    reasons=("fever",),
    temp_c=38.5,
    operator="alice",
    holder="Zhangsan Secret",
)


def test_a_damaged_registration_does_not_stop_the_visitor_search(core):
    """An earlier visitor's registration whose person text is damaged: the console's search
    of earlier visitors by name or phone read every registration's name and phone with
    SQLite's ``json_extract`` and failed (``malformed JSON``): a server error, the form with
    it. The damaged row is nobody's by name now; the others are found."""
    registration(core, "王秀英", "13800138000")
    damaged = registration(core, "王秀兰", "13900139000")
    _edit(
        core.store.path, "UPDATE events SET person = ? WHERE seq = ?", '{"name": "王', damaged.seq
    )
    with signed_in(make_app(core), raise_server_exceptions=False) as tablet:
        for typed in ("秀", "8000"):
            answer = post(tablet, "/guard/register/search", tablet.csrf, q=typed)
            assert answer.status_code == 200, answer.text[:300]
            assert "138****8000" in answer.text and "139****9000" not in answer.text


def test_a_damaged_account_row_does_not_stop_a_sign_in(tmp_path):
    """An account's audit rows (its add, its removal) whose detail is damaged after the
    indexes of where an account begins were made: read by ``json_valid`` first
    (``kiosk.accounts.ACCOUNT_SINCE``), they are nobody's, and the sign-ins go on. Passes
    before and after this change (probed: not a fault)."""
    when = FakeClock(start=datetime(2026, 10, 25, 9, 0, tzinfo=UTC))
    path = tmp_path / "k.db"
    with EventLog(path, "gate-1", when, migrations=[accounts.MIGRATIONS]) as log:
        accs = AccountStore(log, now=when.now)
        for name in ("carol", "dave"):
            accs.add(name, "guard", hash_password("pw-123456", n=FAST), actor="root")
        assert accs.disable("carol", actor="root")
        accs.add("carol", "guard", hash_password("pw-123456", n=FAST), actor="root")
    # carol's first add and her removal (audit seq 1 and 3) damaged
    _edit(path, "UPDATE audit SET detail = '{\"name\": ' WHERE seq IN (1, 3)")
    with EventLog(path, "gate-1", when, migrations=[accounts.MIGRATIONS]) as log:
        accs = AccountStore(log)
        assert accs.authenticate("carol", "pw-123456") is not None
        assert accs.authenticate("dave", "pw-123456") is not None
        assert (accs.since("carol"), accs.since("dave")) == (0, 0)


def test_a_damaged_shift_removal_is_no_server_error_at_sign_in(app, admin, core):
    """A guard's shift removed, the removal's audit detail then damaged into text that is
    not JSON: read by ``json_valid`` first (``kiosk.roster``'s removals), it bars nobody and
    the sign-in answers (no server error). Passes before and after this change."""
    _shift(admin, "2026-02-12T08:00", "2026-02-12T16:00")
    _remove(admin, _shifts(core)[0])
    _edit(core.store.path, "UPDATE audit SET detail = '{\"guard\": ' WHERE action = ?",
          "roster.shift_remove")  # fmt: skip
    _, signed = _sign_in(app)
    assert signed.status_code == 200
    assert admin.get("/guard", follow_redirects=False).status_code == 200


def test_a_damaged_daemon_start_does_not_stop_the_days_report(tmp_path):
    """A daemon start's audit detail damaged: the day's report (the console's statistics,
    ``/api/v1/stats``, ``kiosk report``, each day's freeze before retention) read the power
    spells' rows with ``json_extract(detail, '$.clock')`` over every such row ever written,
    and every day's report failed (``malformed JSON``). The row is read by its stamp, and a
    spell beside it is still reported."""
    when = FakeClock(start=datetime(2026, 10, 25, 9, 0, tzinfo=UTC))
    log = EventLog(tmp_path / "k.db", "gate-1", when).open()
    try:
        log.audit("system", "daemon.start", {"version": "1"})
        when.advance(3600)
        log.audit("system", "pi_power.under_voltage.start", {})
        when.advance(300)
        log.audit("system", "pi_power.under_voltage.end", {})
        log.append(EventDraft(direction="in", decision="deny"))
        _edit(log.path, "UPDATE audit SET detail = '{\"version\": ' WHERE action = 'daemon.start'")
        report = daily_report(log.reader(), date(2026, 10, 25), "UTC")
    finally:
        log.close()
    assert report["downtime"]["power_total"] == 1
    assert report["downtime"]["power"][0]["condition"] == "under_voltage"


def test_a_damaged_revocation_clock_does_not_stop_the_nightly_purge(tmp_path):
    """A revocation made before NTP set the clock keeps the boot's clock (``clocks``); its
    text damaged, the nightly retention read every revocation's boot with ``json_extract``
    and failed (``malformed JSON``): no reason emptied, no revocation let go, for good. The
    damaged row is dated by its ``revoked_at`` now, as one without a boot's clock."""
    from support import reporting_log

    when = FakeClock(start=datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    log = reporting_log(tmp_path / "kiosk.db", when, ledgers=True)
    try:
        lists = ListStore(log, when)
        lists.revoke("0123456789ab", REASON, actor="guard:li")
        _edit(log.path, "UPDATE list_revocations SET clocks = '{\"revoked_at\": ['")
        later = when.now() + timedelta(days=3)
        when.set_wall(later)
        purge(log, 1, later, tz=TZ)
        assert revocation(log, "0123456789ab")["reason"] == ""
    finally:
        log.close()


def test_a_damaged_fever_deny_of_a_guard_is_on_the_unreadable_rows_card(core, clock):
    """A guard's deny of a fever found by hand (no bus alarm recorded on it: no
    ``alarm:<name>`` flag) whose reasons are damaged: the desk read back after a restart
    read it as a deny for no reason and raised no card, and nobody was told. It is named now
    on the card of the rows that cannot be read (``device:unreadable_rows``), with the
    damaged pages' rows."""
    core.store.append(GUARDS_FEVER_DENY)
    alarms = _feed_with_damaged_reasons(core, clock, "/guard/api/feed")["alarms"]
    assert [(a["key"], a["kind"]) for a in alarms] == [("device:unreadable_rows", "device")]
    assert "Zhangsan" not in str(alarms)


def test_a_damaged_pass_with_readable_reasons_raises_no_unreadable_card(core, clock):
    """A pass whose person only is damaged, its reasons and flags read: no card could have
    been lost, and none is raised (the card names only the rows whose reasons or flags,
    what a card is read from, cannot be read)."""
    core.store.append(EventDraft(direction="in", decision="pass", person={"name": "Li"}))
    damage(core.store.path, "person", seq=1)
    with TestClient(make_app(core), base_url=BASE) as client:
        login(client)
        answer = client.get("/guard/api/feed")
    assert answer.status_code == 200 and answer.json()["alarms"] == []


def test_forget_by_name_matches_the_name_inside_a_damaged_person(tmp_path):
    """A visitor's registration whose person text is damaged and whose household and holder
    columns are empty: the name read inside the stored text is a match, so the forget
    empties the row (a forget leaves none of the person's data behind that names them). The
    name's own field cannot be read (``kiosk.people``: NULL), the text is read whole.
    Passes before and after this change (probed)."""
    when = FakeClock(start=datetime(2026, 10, 25, 9, 0, tzinfo=UTC))
    log = EventLog(tmp_path / "k.db", "gate-1", when).open()
    try:
        visitor = {"name": "赵伟", "phone": "138 0013 8000", "unit": "3-301"}
        log.append(EventDraft(direction="in", decision="deny", kind="registration", person=visitor))
        log.append(EventDraft(direction="in", decision="deny", person={"name": "Kept K"}))
        _edit(log.path, "UPDATE events SET person = ? WHERE seq = 1", '{"name":"赵伟","phone":"138')
        assert find(log.reader(), Person.of(name="赵伟"), when.now().date()).counts() == {
            "events": 1
        }
        done = forget(log, Person.of(name="赵伟"), when.now(), actor="root")
        left = log.reader().execute("SELECT seq FROM events WHERE person IS NOT NULL")
        assert done.rows["events"] == 1 and [s for (s,) in left.fetchall()] == [2]
    finally:
        log.close()


def test_a_household_forgotten_whole_takes_its_damaged_rows(tmp_path):
    """A household forgotten whole (everyone of it moved out): a visitor's registration to
    its unit and a pass issued to its resident at the console, each stored text damaged (its
    household fields read as nothing), were left behind, the resident's name in clear in the
    pass's record. The household's code standing whole in the damaged text (``"3-301"``) is a
    match now; another's that holds it (``"13-3011"``) is not."""
    when = FakeClock(start=datetime(2026, 10, 25, 9, 0, tzinfo=UTC))
    log = EventLog(tmp_path / "k.db", "gate-1", when).open()
    try:
        log.append(EventDraft(direction="in", decision="pass", household="3-301", holder="Wang R"))
        for name, unit in (("Zhao V", "3-301"), ("Qian V", "13-3011")):
            visitor = {"name": name, "unit": unit}
            log.append(
                EventDraft(direction="in", decision="deny", kind="registration", person=visitor)
            )
        issued = {"pass_id": "0123456789ab", "holder": "Wang R", "household": "3-301"}
        log.audit("alice", "pass_issued", issued)
        # a byte lost at the start of each stored text: no longer JSON, the rest intact
        _edit(log.path, "UPDATE events SET person = substr(person, 2) WHERE seq IN (2, 3)")
        _edit(log.path, "UPDATE audit SET detail = substr(detail, 2) WHERE action = ?",
              "pass_issued")  # fmt: skip
        done = forget(log, Person.of(household="3-301"), when.now(), actor="root", force=True)
        left = log.reader().execute("SELECT seq FROM events WHERE person IS NOT NULL")
        issued_left = log.reader().execute(
            "SELECT count(*) FROM audit WHERE action = 'pass_issued' AND detail IS NOT NULL"
        )
        assert (done.rows["events"], done.rows["audit"]) == (2, 1)
        assert [s for (s,) in left.fetchall()] == [3] and issued_left.fetchone()[0] == 0
    finally:
        log.close()
