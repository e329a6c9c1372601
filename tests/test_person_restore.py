"""A resident forgotten stays forgotten: ``kiosk restore`` of an archive taken before a
forget makes that forget again (``kiosk.people.reapply``) from the record the forget kept
(in ``meta``: the rows it emptied by their identity, never a key of the person), which the
restore carries from the log it sets aside; the record names nobody."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pytest
from test_backup import (  # no_installed_kiosk: autouse here too
    make_gate,
    no_installed_kiosk,  # noqa: F401
    run_backup,
    run_restore,
)

from checkpoint.cli import main
from kiosk.clock import FakeClock
from kiosk.store import EventDraft, EventLog

NAME, HOUSEHOLD, PHONE = "Wang Lei", "B3-1201", "13800000000"
CARD = "3f9a1c2e0b4d"  # a pass of theirs this gate's archive never saw
NEIGHBOUR = "Ottoline Baptiste"


@pytest.fixture
def cli_clock(clock, monkeypatch):
    from drivers import clocksync

    monkeypatch.setattr(clocksync, "system_clock", lambda *a, **kw: FakeClock(start=clock.now()))


def resident_passes(log, count: int, **fields) -> None:
    """``count`` passes in of the resident (``NAME`` of ``HOUSEHOLD``, passes ``aaaaaaaaaa00``,
    ``aaaaaaaaaa01``, ...) into ``log``, each with ``fields``."""
    for i in range(count):
        draft = EventDraft(
            direction="in", decision="pass", pass_id=f"aaaaaaaaaa{i:02d}", household=HOUSEHOLD,
            holder=NAME, **fields,
        )  # fmt: skip
        log.append(draft)


def _gate(tmp_path, clock):
    """A gate whose log holds the resident's passages and her note on a neighbour's."""
    data, etc, log = make_gate(tmp_path / "north", clock, events=0)
    resident_passes(log, 2, person={"name": NAME, "phone": PHONE})
    log.append(
        EventDraft(
            direction="in",
            decision="manual_pass",
            pass_id="bbbbbbbbbbbb",
            household="C1-0101",
            holder=NEIGHBOUR,
            person={"note": f"let in with {NAME}"},
        )
    )
    return data, etc, log


def _forget(data, *keys: str) -> dict:
    argv = ["person", "forget", *keys, "--yes", "--db", str(data / "kiosk.db")]
    assert main(argv) == 0
    return argv


def _naming(db, *needles: str) -> list[str]:
    """The tables of ``db`` with a row holding one of ``needles`` anywhere."""
    conn = sqlite3.connect(db)
    try:
        found = []
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608
                text = json.dumps(row, default=str, ensure_ascii=False)
                if any(n.lower() in text.lower() for n in needles):
                    found.append(table)
                    break
        return found
    finally:
        conn.close()


def _damaged(db) -> None:
    """A card failing under this Pi's log: its events cannot be read any more (the restore
    judges it as no log, and keeps it aside), the forgets' records it keeps still can."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DROP TABLE events")
    conn.close()


def test_a_restore_of_an_archive_taken_before_a_forget_forgets_again(
    tmp_path, clock, cli_clock, capsys
):
    data, etc, log = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    log.close()
    _forget(data, "--name", NAME, "--household", HOUSEHOLD, "--pass-id", CARD)
    db = data / "kiosk.db"
    assert _naming(db, NAME, PHONE) == []
    capsys.readouterr()
    # while this Pi's log reads, it is kept: the forget's audit row is after the archive's
    assert run_restore(data, etc, archive) == 2
    assert "audit seq" in capsys.readouterr().err and not list(data.glob("before-*"))
    _damaged(db)

    assert run_restore(data, etc, archive) == 0

    out, err = capsys.readouterr()
    said = json.loads(out)
    assert said["forgets_reapplied"]["forgets"] == 1
    assert said["forgets_reapplied"]["rows"]["events"] == 3  # her two and the note
    assert "forgets made since the archive, made again: 1 (" in err and NAME not in err + out
    assert _naming(db, NAME, PHONE) == []
    conn = sqlite3.connect(db)
    try:
        revoked = {r[0] for r in conn.execute("SELECT pass_id FROM list_revocations")}
        audit = conn.execute(
            "SELECT detail FROM audit WHERE action = 'person_forgotten' ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()
    # the card the archive never saw stays shut: carried from the log set aside
    assert {CARD, "aaaaaaaaaa00", "aaaaaaaaaa01"} <= revoked
    assert "bbbbbbbbbbbb" not in revoked  # the neighbour's, only noted beside her
    (detail,) = [json.loads(d) for (d,) in audit]
    assert detail["reapplies"] and detail["rows"]["events"] == 3
    restored = EventLog(db, "gate-north", clock).open()
    try:
        assert restored.verify().ok
    finally:
        restored.close()
    # the way back: the log set aside whole, as it was before the restore
    (aside,) = data.glob("before-restore-*")
    assert (aside / "kiosk.db").exists()


def test_a_forget_the_archive_already_holds_is_not_made_again(tmp_path, clock, cli_clock, capsys):
    data, etc, log = _gate(tmp_path, clock)
    log.close()
    _forget(data, "--name", NAME, "--household", HOUSEHOLD)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    capsys.readouterr()

    assert run_restore(data, etc, archive) == 0

    out, err = capsys.readouterr()
    assert json.loads(out)["forgets_reapplied"]["forgets"] == 0
    assert "forgets made since" not in err


def test_the_record_a_forget_keeps_names_nobody_in_clear(tmp_path, clock, cli_clock):
    data, _, log = _gate(tmp_path, clock)
    log.close()
    _forget(data, "--name", NAME, "--household", HOUSEHOLD, "--phone", PHONE, "--pass-id", CARD)
    conn = sqlite3.connect(data / "kiosk.db")
    try:
        kept = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'forget.%'"))
    finally:
        conn.close()
    records = [v for k, v in kept.items() if k.startswith("forget.record.")]
    assert len(records) == 1
    text = records[0].lower()
    for needle in (NAME, HOUSEHOLD, PHONE, CARD, "aaaaaaaaaa00", "wang"):
        assert needle.lower() not in text


def test_a_record_finds_a_phone_and_a_plate_however_spelled_and_in_a_note(tmp_path, clock):
    """``reapply`` on a copy taken before the forget: the rows the forget found (the phone
    typed with separators, the plate in lower case, the name inside a guard's note) are
    emptied again by their identity."""
    from kiosk.people import Person, forget, kept, reapply

    log = EventLog(tmp_path / "kiosk.db", "gate-north", clock).open()
    spelled = {"name": "Zhou Min", "phone": "139 0013 9000", "plate": "京a·12345"}
    log.append(EventDraft(direction="in", decision="pass", pass_id="cccccccccccc", person=spelled))
    note = {"note": "parked by ZHOU MIN's gate"}
    log.append(EventDraft(direction="in", decision="pass", pass_id="dddddddddddd", person=note))
    log.append(EventDraft(direction="in", decision="pass", pass_id="eeeeeeeeeeee", holder="Other"))
    copy = sqlite3.connect(tmp_path / "before.db")
    log.reader().conn.backup(copy)
    copy.close()
    person = Person.of(name="Zhou Min", phones=["13900139000"], plates=["京A12345"])
    assert forget(log, person, clock.now(), actor="cli").rows["events"] == 2
    forgets = kept(log.reader().conn)
    log.close()

    before = EventLog(tmp_path / "before.db", "gate-north", clock).open()
    try:
        done = reapply(before, forgets, clock.now(), actor="restore")
        held = [e["person"] for e in before.events(0, 10)]
        assert before.verify().ok
    finally:
        before.close()
    assert done.forgets == 1 and done.rows["events"] == 2
    assert held[:2] == [None, None] and held[2] is None  # the third never had one
    assert _naming(tmp_path / "before.db", "Zhou", "13900139000", "139 0013", "京") == []


def test_a_household_forgotten_whole_is_forgotten_whole_again_after_a_restore(tmp_path, clock):
    """The passes the forget found are kept apart from the keys it was given: the record of
    a household given alone still names a household alone, and its re-making forgets every
    row of the household (a visitor registered to it too), not only its passes'."""
    from checkpoint.cli.person_cmd import _sets
    from kiosk.people import Person, forget, kept, reapply

    log = EventLog(tmp_path / "kiosk.db", "gate-north", clock, migrations=_sets()).open()
    log.append(
        EventDraft(
            direction="out",
            decision="pass",
            pass_id="aaaaaaaaaaaa",
            household=HOUSEHOLD,
            holder=NAME,
        )
    )
    visitor = {"name": "Visitor Zhang", "phone": "13711112222", "unit": HOUSEHOLD}
    log.append(
        EventDraft(direction="in", decision="manual_pass", household=HOUSEHOLD, person=visitor)
    )
    copy = sqlite3.connect(tmp_path / "before.db")
    log.reader().conn.backup(copy)
    copy.close()
    assert forget(log, Person.of(household=HOUSEHOLD), clock.now(), actor="cli").rows == {
        "events": 2
    }
    forgets = kept(log.reader().conn)
    log.close()

    before = EventLog(tmp_path / "before.db", "gate-north", clock, migrations=_sets()).open()
    try:
        done = reapply(before, forgets, clock.now(), actor="restore")
        left = (
            before.reader()
            .execute("SELECT seq FROM events WHERE household <> '' OR person IS NOT NULL")
            .fetchall()
        )
        assert before.verify().ok
    finally:
        before.close()
    assert done.rows == {"events": 2}
    assert left == []
    assert _naming(tmp_path / "before.db", HOUSEHOLD, "Visitor Zhang") == []


def _meta(db) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'forget.%'"))
    finally:
        conn.close()


def test_nothing_a_forget_keeps_lets_a_guessed_phone_or_name_be_tested(tmp_path, clock, cli_clock):
    """The record names the rows it emptied, never the person: no key beside it (a key in
    ``meta`` is in the live log and in every archive), no digest of a name or phone, no
    length. Tried as the reviewer did: every value of ``meta`` taken as a key, the phone's
    and the name's digests under it are nowhere in the record."""
    import hashlib
    import hmac
    import re

    data, etc, log = _gate(tmp_path, clock)
    log.close()
    _forget(data, "--name", NAME, "--household", HOUSEHOLD, "--phone", PHONE)
    archive = tmp_path / "after.kbak"
    assert run_backup(data, etc, archive) == 0  # the archive holds the same meta
    kept = _meta(data / "kiosk.db")
    assert [k for k in kept if not k.startswith("forget.record.")] == []
    (record,) = kept.values()
    assert "lengths" not in json.loads(record) and "person" not in json.loads(record)
    conn = sqlite3.connect(data / "kiosk.db")
    try:
        values = [str(v) for (v,) in conn.execute("SELECT value FROM meta")]
    finally:
        conn.close()
    keys = {bytes.fromhex(h) for v in values for h in re.findall(r"\b[0-9a-f]{64}\b", v)}
    for key in keys:
        for guess in (f"phone:{PHONE}", f"text:{NAME.lower()}", f"text:{HOUSEHOLD.lower()}"):
            digest = hmac.new(key, guess.encode(), hashlib.sha256).hexdigest()
            assert digest[:32] not in record and digest[:16] not in record


def test_a_record_of_another_chain_empties_nothing(tmp_path, clock):
    """A record names its rows by ``seq`` and hash: a log of another chain (another gate's,
    a new one) holding rows at those seqs is never touched by it."""
    from checkpoint.cli.person_cmd import _sets
    from kiosk.people import Person, forget, kept, reapply

    log = EventLog(tmp_path / "kiosk.db", "gate-north", clock, migrations=_sets()).open()
    log.append(EventDraft(direction="in", decision="pass", pass_id="cccccccccccc", holder=NAME))
    assert forget(log, Person.of(name=NAME), clock.now(), actor="cli").rows["events"] == 1
    forgets = kept(log.reader().conn)
    log.close()
    other = EventLog(tmp_path / "other.db", "gate-north", clock, migrations=_sets()).open()
    try:
        other.append(
            EventDraft(
                direction="in", decision="pass", pass_id="dddddddddddd", holder="Somebody Else"
            )
        )
        done = reapply(other, forgets, clock.now(), actor="restore")
        (row,) = other.events(0, 10)
    finally:
        other.close()
    assert done.rows == {} and row["holder"] == "Somebody Else"  # its card alone shut again


def test_a_household_s_list_rows_are_forgotten_again_by_their_identity(tmp_path, clock):
    """The lists' and ledgers' rows the forget emptied, found again in an older copy by the
    columns that name nobody (``_IDENTITY``): the household's list row, its quarantine entry
    (lifted), its service request (done), deleted or emptied as the forget did."""
    from checkpoint.cli.person_cmd import _sets
    from kiosk.people import Person, forget, kept, reapply

    log = EventLog(tmp_path / "kiosk.db", "gate-north", clock, migrations=_sets()).open()
    log.append(
        EventDraft(
            direction="in",
            decision="pass",
            pass_id="aaaaaaaaaaaa",
            household=HOUSEHOLD,
            holder=NAME,
        )
    )
    stamp = "2026-01-01T00:00:00+00:00"

    def lists(db):
        db.execute(
            "INSERT INTO list_households (household, residents, note, source, actor, updated_at)"
            " VALUES (?, 2, ?, 'csv', 'office', ?)",
            [HOUSEHOLD, f"{NAME} lives here", stamp],
        )
        db.execute(
            "INSERT INTO list_households (household, residents, note, source, actor, updated_at)"
            " VALUES ('C1-0101', 1, '', 'csv', 'office', ?)",
            [stamp],
        )
        db.execute(
            "INSERT INTO list_quarantine (household, holder, from_date, until_date, note,"
            " source, actor, created_at) VALUES (?, ?, '2025-01-01', '2025-01-14', 'x',"
            " 'guard', 'g', ?)",
            [HOUSEHOLD, NAME, stamp],
        )
        db.execute(
            "INSERT INTO service_requests (household, kind, note, state, opened_at)"
            " VALUES (?, 'delivery', ?, 'done', ?)",
            [HOUSEHOLD, f"for {NAME}", stamp],
        )

    log.submit(lists)
    copy = sqlite3.connect(tmp_path / "before.db")
    log.reader().conn.backup(copy)
    copy.close()
    done = forget(log, Person.of(household=HOUSEHOLD), clock.now(), actor="cli")
    assert {"list_households", "list_quarantine", "service_requests"} <= set(done.rows)
    forgets = kept(log.reader().conn)
    log.close()

    before = EventLog(tmp_path / "before.db", "gate-north", clock, migrations=_sets()).open()
    try:
        again = reapply(before, forgets, clock.now(), actor="restore")
        households = [
            r[0] for r in before.reader().execute("SELECT household FROM list_households")
        ]
    finally:
        before.close()
    assert again.rows == done.rows
    assert households == ["C1-0101"]  # the neighbour's row untouched
    assert _naming(tmp_path / "before.db", HOUSEHOLD, NAME) == []


def test_every_store_a_forget_empties_has_a_row_identity():
    from kiosk.people import _CHAINED, _IDENTITY, RULES

    forgets = {t for t, rule in RULES.items() if rule.forget is not None}
    assert forgets - set(_CHAINED) == set(_IDENTITY)


def test_a_log_whose_forgets_cannot_be_read_stops_the_restore_unless_told(
    tmp_path, clock, cli_clock, capsys
):
    """A log set aside whose records cannot be read would let the forgets since the archive
    be undone unseen: the restore stops, nothing changed, and says what the operator can do
    (the office's list of requests); ``--without-forgets`` goes on, saying it again."""
    data, etc, log = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    log.close()
    db = data / "kiosk.db"
    for extra in ("-wal", "-shm"):
        (data / f"kiosk.db{extra}").unlink(missing_ok=True)
    db.write_bytes(b"not a database, a damaged card" * 200)
    capsys.readouterr()

    assert run_restore(data, etc, archive) != 0
    err = capsys.readouterr().err
    assert "cannot be read" in err and "office's list of requests" in err
    assert "--without-forgets" in err and "nothing was changed" in err
    assert db.read_bytes().startswith(b"not a database") and not list(data.glob("before-*"))

    assert run_restore(data, etc, archive, "--without-forgets") == 0
    err = capsys.readouterr().err
    assert "office's list of requests" in err and "person forget --keys-file - --yes" in err
    assert _naming(db, NAME)  # the archive's log, as it was: forget them again by hand


def _archive(log, path) -> None:
    copy = sqlite3.connect(path)
    try:
        log.reader().conn.backup(copy)
    finally:
        copy.close()


def _reapplied(path, clock, forgets, sets=None):
    from checkpoint.cli.person_cmd import _sets
    from kiosk.people import reapply

    before = EventLog(path, "gate-north", clock, migrations=sets or _sets()).open()
    try:
        return reapply(before, forgets, clock.now(), actor="restore")
    finally:
        before.close()


def _select(db, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_card_a_guard_revoked_before_the_forget_is_shut_again_after_a_restore(tmp_path, clock):
    """After the archive a guard revokes the resident's card (lost), then she is forgotten:
    the forget's own revocation is ignored (the card is revoked already), so the record names
    the stamps of her cards' revocations as they stand, and the restore of the archive
    re-applies them from the log set aside."""
    from checkpoint.cli.person_cmd import _sets
    from kiosk.people import Person, forget, kept

    card = "aaaaaaaaaaaa"
    log = EventLog(tmp_path / "kiosk.db", "gate-north", clock, migrations=_sets()).open()
    log.append(
        EventDraft(direction="in", decision="pass", pass_id=card, household=HOUSEHOLD, holder=NAME)
    )
    _archive(log, tmp_path / "before.db")
    for pass_id in (card, "bbbbbbbbbbbb"):  # one sheet of revocations: one stamp
        log.submit(
            lambda db, p=pass_id: db.execute(
                "INSERT INTO list_revocations (pass_id, reason, revoked_at, source, actor)"
                " VALUES (?, 'lost', '2026-03-02T08:00:00+00:00', 'csv', 'g')",
                [p],
            )
        )
    forget(log, Person.of(name=NAME, household=HOUSEHOLD), clock.now(), actor="cli")
    forgets = kept(log.reader().conn)
    log.close()
    assert card not in json.dumps(dict(forgets.meta))

    done = _reapplied(tmp_path / "before.db", clock, forgets)

    assert done.passes_revoked == 1  # hers, not the other card of the same sheet
    assert _select(tmp_path / "before.db", "SELECT pass_id, reason FROM list_revocations") == [
        (card, "")
    ]


def test_a_record_the_restore_cannot_read_stops_it_unless_told(tmp_path, clock, cli_clock, capsys):
    """A forget's record the restore cannot read (damaged, or of a newer format after a
    downgrade) was passed over unsaid: that forget undone unseen. The restore stops as for a
    log it cannot read; ``--without-forgets`` makes the others again and says how many not."""
    data, etc, log = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    log.close()
    _forget(data, "--name", NAME, "--household", HOUSEHOLD)
    db = data / "kiosk.db"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value = json_set(value, '$.v', 3) WHERE key LIKE 'forget.r%'")
    conn.close()
    _damaged(db)
    capsys.readouterr()

    assert run_restore(data, etc, archive) != 0
    err = capsys.readouterr().err
    assert "1 of the residents' forgets" in err and "cannot be read" in err
    assert "office's list of requests" in err and "--without-forgets" in err
    assert "nothing was changed" in err and not list(data.glob("before-*"))
    assert _naming(db, NAME) == []

    assert run_restore(data, etc, archive, "--without-forgets") == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["forgets_reapplied"]["unreadable"] == 1
    assert "office's list of requests" in err and "1 of the residents' forgets" in err
    assert _naming(db, NAME)  # the archive's log: forget them again by hand


def test_a_household_row_an_unchanged_household_sheet_wrote_again_is_found_again(tmp_path, clock):
    """The office's household sheet imported again, unchanged, between the archive and the
    forget re-stamped every row: the record named the row by its new stamp and the restore of
    the archive left the household, the resident's name in its note. A row written again as
    it was now keeps its stamp (and says when it last changed)."""
    from checkpoint.cli.person_cmd import _sets
    from kiosk.lists import ListStore
    from kiosk.people import Person, forget, kept

    log = EventLog(tmp_path / "kiosk.db", "gate-north", clock, migrations=_sets()).open()
    log.append(
        EventDraft(direction="in", decision="pass", pass_id="aaaaaaaaaaaa", household=HOUSEHOLD)
    )
    lists = ListStore(log, clock)
    lists.load()
    sheet = f'household,residents,note\n{HOUSEHOLD},2,"{NAME} lives here"\nC1-0101,1,\n'
    lists.import_csv("households", sheet, "office")
    _archive(log, tmp_path / "before.db")
    clock.advance(86400)
    lists.import_csv("households", sheet, "office")
    done = forget(log, Person.of(household=HOUSEHOLD), clock.now(), actor="cli")
    assert "list_households" in done.rows
    forgets = kept(log.reader().conn)
    log.close()

    again = _reapplied(tmp_path / "before.db", clock, forgets)

    assert again.rows["list_households"] == 1
    left = _select(tmp_path / "before.db", "SELECT household, note FROM list_households")
    assert left == [("C1-0101", "")]


def test_a_household_row_a_sheet_changes_takes_the_sheet_s_stamp(tmp_path, clock):
    from kiosk import lists as lists_mod
    from kiosk.lists import ListStore

    log = EventLog(tmp_path / "k.db", "gate-north", clock, migrations=[lists_mod.MIGRATIONS])
    log.open()
    lists = ListStore(log, clock)
    lists.load()
    lists.import_csv("households", "household,residents\nA-1,2\nB-2,1\n", "office")
    lists.set_household("C-3", "guard", residents=1)
    sql = "SELECT household, updated_at FROM list_households"
    first = dict(_select(tmp_path / "k.db", sql))
    clock.advance(60)
    lists.import_csv("households", "household,residents\nA-1,3\nB-2,1\nC-3,1\n", "office")
    then = dict(_select(tmp_path / "k.db", sql))
    sources = dict(_select(tmp_path / "k.db", "SELECT household, source FROM list_households"))
    log.close()
    assert then["B-2"] == first["B-2"] and then["A-1"] > first["A-1"]
    assert then["C-3"] > first["C-3"] and sources["C-3"] == "csv"  # the guard's: the sheet's now


def test_a_vehicle_row_an_unchanged_vehicle_list_wrote_again_is_found_again(tmp_path, clock):
    """The vehicle list imported again (every row deleted and inserted: new rowid, new stamp)
    between the archive and the forget: the resident's plate came back with the restore. A
    row written again as it was now keeps its rowid and stamp."""
    from checkpoint.cli.person_cmd import _sets
    from kiosk import vehicles
    from kiosk.people import Person, forget, kept
    from kiosk.vehicles import VehicleList

    sets = [*_sets(), vehicles.MIGRATIONS]
    log = EventLog(tmp_path / "kiosk.db", "gate-north", clock, migrations=sets).open()
    log.append(
        EventDraft(direction="in", decision="pass", pass_id="aaaaaaaaaaaa", household=HOUSEHOLD)
    )
    cars = VehicleList(log, clock)
    sheet = f"plate,household\n京A12345,{HOUSEHOLD}\n京B99999,C1-0101\n".encode()
    cars.apply(cars.plan_import(sheet, "v.csv"), "office")
    _archive(log, tmp_path / "before.db")
    clock.advance(86400)
    cars.apply(cars.plan_import(sheet, "v.csv"), "office")
    done = forget(log, Person.of(household=HOUSEHOLD), clock.now(), actor="cli")
    assert done.rows["resident_vehicles"] == 1
    forgets = kept(log.reader().conn)
    log.close()

    again = _reapplied(tmp_path / "before.db", clock, forgets, sets)

    assert again.rows["resident_vehicles"] == 1
    left = _select(tmp_path / "before.db", "SELECT plate, household FROM resident_vehicles")
    assert left == [("京B99999", "C1-0101")]


def test_a_restore_says_how_many_list_rows_a_forget_named_it_did_not_find(
    tmp_path, clock, cli_clock, capsys
):
    """A list row the forget emptied that the archive does not hold by its identity (its note
    rewritten since the archive: the archive holds it as it was, naming the resident) is not
    found again, and records name nobody: the restore counts such rows, in its output and the
    forget's audit row, and says to forget again from the office's list of requests."""
    from checkpoint.cli.person_cmd import _sets
    from kiosk.lists import ListStore

    data, etc, log = _gate(tmp_path, clock)
    log.close()
    log = EventLog(data / "kiosk.db", "gate-north", clock, migrations=_sets()).open()
    lists = ListStore(log, clock)
    lists.load()
    lists.import_csv("households", f'household,note\n{HOUSEHOLD},"{NAME} lives here"\n', "o")
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    clock.advance(60)
    lists.import_csv("households", f'household,note\n{HOUSEHOLD},"{NAME}, moving out"\n', "o")
    log.close()
    _forget(data, "--name", NAME, "--household", HOUSEHOLD)
    _damaged(data / "kiosk.db")
    capsys.readouterr()

    assert run_restore(data, etc, archive) == 0

    out, err = capsys.readouterr()
    said = json.loads(out)["forgets_reapplied"]
    assert said["forgets"] == 1 and said["rows_not_found"] == {"list_households": 1}
    assert "1 list row a forget emptied is not in the archive as it was" in err
    assert "office's list of requests" in err and NAME not in err + out
    sql = "SELECT detail FROM audit WHERE action = 'person_forgotten'"
    (detail,) = _select(data / "kiosk.db", sql)
    assert json.loads(detail[0])["rows_not_found"] == {"list_households": 1}


@pytest.mark.usefixtures("as_root")
@pytest.mark.parametrize("when", ["after_extraction", "as_it_is_opened"])
def test_a_stage_swapped_for_a_link_has_no_other_log_read_or_forgotten_on(
    tmp_path, clock, cli_clock, capsys, monkeypatch, when
):
    """The archive's files were written into the stage by its descriptor, but the restore
    then opened the staged log by its path, to describe it and to make the forgets again on
    it: a link the data dir's user put in the stage's place (right after the extraction, or
    as the log was opened) had root read, and forget on, the log of the folder it named
    (the archive's log swapped in with its forgets not made again). Refused, that log as it
    was, nothing of this Pi's moved."""
    from kiosk import backup

    data, etc, log = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    log.close()
    _forget(data, "--name", NAME, "--household", HOUSEHOLD)
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    real_extract, real_open = backup.extract_all, backup.sqlite_read_only

    def swap() -> None:
        (stage,) = data.glob(".restore-*")
        (decoy / "kiosk.db").write_bytes((stage / "kiosk.db").read_bytes())
        stage.rename(tmp_path / "stage.moved")
        stage.symlink_to(decoy)

    def extracted(*args):
        placed = real_extract(*args)
        if when == "after_extraction":
            swap()
        return placed

    def opened(path, **how):
        if when == "as_it_is_opened" and not (decoy / "kiosk.db").exists():
            swap()
        return real_open(path, **how)

    monkeypatch.setattr(backup, "extract_all", extracted)
    monkeypatch.setattr(backup, "sqlite_read_only", opened)
    ours = (data / "kiosk.db").read_bytes()
    capsys.readouterr()

    assert run_restore(data, etc, archive) == 1

    err = capsys.readouterr().err
    assert "nothing was changed" in err and "this user's" in err, err
    assert os.listdir(decoy) == ["kiosk.db"]  # no -wal, -shm made there
    assert _naming(decoy / "kiosk.db", NAME) != []  # read only: no forget made on it
    assert (data / "kiosk.db").read_bytes() == ours


def _stage_for_a_link(data, tmp_path, decoy) -> None:
    """The data dir's user's move: the restore's stage renamed away, a link to ``decoy`` in
    its place."""
    (stage,) = data.glob(".restore-*")
    stage.rename(tmp_path / "stage.moved")
    stage.symlink_to(decoy)


@pytest.mark.usefixtures("as_root")
def test_the_forgets_log_opened_after_a_link_took_the_stages_place_is_still_the_stages(
    tmp_path, clock, cli_clock, capsys, monkeypatch
):
    """The forgets' log was opened by the stage's path after ``Staged.file``'s check: a
    link swapped in between had root's writer make kiosk.db, -wal, -shm and the log's 32
    tables where it pointed before the refusal. SQLite is given the held descriptor's path
    (/proc/self/fd/FD/kiosk.db): nothing is made at the link's target; the link is refused
    before anything moves."""
    from kiosk import store

    data, etc, log = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    log.close()
    _forget(data, "--name", NAME, "--household", HOUSEHOLD)
    _damaged(data / "kiosk.db")  # else refused first: the forget's audit row is after the archive
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    real_open = store.EventLog.open

    def opened(self):
        _stage_for_a_link(data, tmp_path, decoy)
        return real_open(self)

    monkeypatch.setattr(store.EventLog, "open", opened)
    ours = (data / "kiosk.db").read_bytes()
    capsys.readouterr()

    assert run_restore(data, etc, archive) == 1

    err = capsys.readouterr().err
    assert "nothing was changed" in err, err
    assert os.listdir(decoy) == []
    assert (data / "kiosk.db").read_bytes() == ours


@pytest.mark.usefixtures("as_root")
@pytest.mark.parametrize("connection", ["writer", "reader"])
def test_a_forgets_connection_sqlite_opened_on_another_file_is_refused_before_it_is_used(
    tmp_path, clock, cli_clock, capsys, monkeypatch, connection
):
    """``Staged.holds`` was checked once, after the writer opened: the reader the forgets
    are read by was opened by path after it, and a link swapped in meanwhile had root read
    the forgets already made from another log (none made again, the forgotten resident back,
    exit 0). Every connection is checked (as SQLite resolving the stage's path just as it is
    swapped would open another file: here, a copy of this Pi's log): refused before it is
    written or read, nothing changed."""
    from kiosk import store

    data, etc, log = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    log.close()
    _forget(data, "--name", NAME, "--household", HOUSEHOLD)
    _damaged(data / "kiosk.db")  # else refused first: the forget's audit row is after the archive
    other = tmp_path / "decoy" / "kiosk.db"
    other.parent.mkdir()
    (data / "kiosk.db").rename(other)
    shutil.copyfile(other, data / "kiosk.db")
    before = other.read_bytes()
    real_writer, real_reader = store._open_connection, store.sqlite_read_only

    def writer(path, timeout_s):
        return real_writer(other if connection == "writer" else path, timeout_s)

    def reader(path, **how):
        return real_reader(other if connection == "reader" else path, **how)

    monkeypatch.setattr(store, "_open_connection", writer)
    monkeypatch.setattr(store, "sqlite_read_only", reader)
    ours = (data / "kiosk.db").read_bytes()
    capsys.readouterr()

    assert run_restore(data, etc, archive) == 1

    err = capsys.readouterr().err
    assert "kiosk.db is not the file staged there" in err and "nothing was changed" in err, err
    assert other.read_bytes() == before and sorted(os.listdir(other.parent)) == ["kiosk.db"]
    assert (data / "kiosk.db").read_bytes() == ours
    assert _naming(data / "kiosk.db", NAME) == []


@pytest.mark.usefixtures("as_root")
def test_a_restore_where_proc_is_not_mounted_says_so(
    tmp_path, clock, cli_clock, capsys, monkeypatch
):
    """Without /proc (a rescue shell's chroot) the restore cannot reach its stage by the
    descriptor it holds, nor check what SQLite opened: it said a link was put in the stage's
    place. It says /proc is not mounted, and changes nothing."""
    from kiosk import backup

    data, etc, log = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    log.close()
    monkeypatch.setattr(backup, "_FDS", str(tmp_path / "no-proc"), raising=False)
    ours = (data / "kiosk.db").read_bytes()
    capsys.readouterr()

    assert run_restore(data, etc, archive) == 1

    err = capsys.readouterr().err
    assert "/proc is not mounted" in err and "nothing was changed" in err, err
    assert "link" not in err
    assert (data / "kiosk.db").read_bytes() == ours


def _created_at(capsys) -> str:
    """The archive's ``created_at``, from the manifest ``kiosk backup`` printed."""
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])["created_at"]


@pytest.mark.parametrize(
    ("card", "zone", "local"),
    [
        ("fresh_install", "Asia/Shanghai", "2026-03-02 16:30 UTC+08:00"),
        ("no_log", "Asia/Shanghai", "2026-03-02 16:30 UTC+08:00"),
        ("fresh_install", "Pacific/Honolulu", "2026-03-01 22:30 UTC-10:00"),
    ],
)
def test_a_restore_onto_a_new_card_says_the_forgets_since_the_archive_are_to_be_made_by_hand(
    tmp_path, clock, cli_clock, capsys, monkeypatch, card, zone, local
):
    """The old card died after a forget; the new card's install (its own kiosk id, or no log
    yet) has no record of it. The restore exited 0, `forgets_reapplied` 0, and said nothing:
    the forgotten resident's name and phone back, her card no longer revoked, once the kiosk
    started. Now the JSON says the forgets since the archive are not on this card, and stderr
    says, with the archive's date, to forget them again by hand before the kiosk starts. That
    date is the site's clock's, with its offset and zone: said in UTC (``Z``), a gate west of
    UTC read an archive taken on the evening of 1 March as taken on 2 March, and asked the
    office for the requests of a day too late."""
    data, etc, log = _gate(tmp_path, clock)
    with (etc / "kiosk.toml").open("a") as config:
        config.write(f'timezone = "{zone}"\n')
    archive = tmp_path / "north.kbak"
    capsys.readouterr()
    with monkeypatch.context() as taken:  # the archive taken as the clock reads
        taken.setattr("checkpoint.cli.backup_cmd._now", clock.now)
        assert run_backup(data, etc, archive) == 0
    since = _created_at(capsys)
    log.close()
    _forget(data, "--name", NAME, "--household", HOUSEHOLD)  # on the card that then died
    new, new_etc, new_log = make_gate(tmp_path / "new", clock, kiosk_id="kiosk-new", events=0)
    new_log.close()
    if card == "no_log":
        for path in new.glob("kiosk.db*"):
            path.unlink()
    # the new card's installed kiosk (kiosk.service's folders), not a drill
    monkeypatch.setattr("checkpoint.cli.backup_cmd.INSTALLED_DATA", str(new))
    monkeypatch.setattr("checkpoint.cli.backup_cmd.INSTALLED_CONFIG", str(new_etc / "kiosk.toml"))
    capsys.readouterr()

    assert run_restore(new, new_etc, archive, "--as-this-gate") == 0

    out, err = capsys.readouterr()
    restored = json.loads(out)
    why = "another_log" if card == "fresh_install" else "no_log"
    assert since.endswith("Z")  # the JSON keeps UTC, and says the site's zone beside it
    assert restored["forgets_by_hand"] == {"since": since, "timezone": zone, "why": why}
    assert restored["forgets_reapplied"]["forgets"] == 0
    shown = f"{local} ({zone})"
    advice = (
        f"forgets made at this gate since the archive was taken ({shown}) are not on this card:"
        f" get the office's list of requests since {shown} and forget each resident on it again"
        " (sudo kiosk-admin person forget --keys-file - --yes, the keys typed at its prompt)"
        " before the kiosk starts"
    )
    assert advice in err, err
    assert err.index(advice) < err.index("kiosk restore: restored kiosk 'gate-north'")
    assert _naming(new / "kiosk.db", NAME)  # the archive's log, as the advice says


def test_a_restore_over_this_pis_own_log_asks_for_no_forgets_by_hand(
    tmp_path, clock, cli_clock, capsys
):
    """The log it replaces is the archive's own: its forgets since are made again (or the
    restore refused), so nothing is left to do by hand."""
    data, etc, log = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    log.close()
    capsys.readouterr()

    assert run_restore(data, etc, archive) == 0

    out, err = capsys.readouterr()
    assert json.loads(out)["forgets_by_hand"] is None
    assert "not on this card" not in err and "person forget" not in err
