"""What a review of ``kiosk person show/forget`` and ``kiosk fleet forget`` found, pinned.

Each test names a defect it found: the fix is in the commit that added the test. All on a
FakeClock (the ``guard_core`` fixture's), nothing written outside ``tmp_path``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest
from guard_support import add_event

from checkpoint.cli import main
from kiosk.clock import FakeClock
from kiosk.people import Person, find, forget


def test_fleet_forget_never_prints_the_databases_password(capsys):
    dsn = "postgresql://office:s3cret-Pw@127.0.0.1:1/fleet?connect_timeout=2"
    assert main(["fleet", "forget", dsn, "--kiosk", "gate-1", "--seqs", "1-4"]) == 1
    err = capsys.readouterr().err
    assert "s3cret-Pw" not in err
    assert "127.0.0.1" in err


def _empty_by_hand(db, seqs, stamp):
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE events SET holder = NULL, household = NULL, pass_id = NULL, person = NULL,"
            " purged_at = ? WHERE seq IN (SELECT value FROM json_each(?))",
            [stamp, json.dumps(list(seqs))],
        )
    conn.close()


@pytest.fixture
def cli_clock(clock, monkeypatch):
    from drivers import clocksync

    monkeypatch.setattr(clocksync, "system_clock", lambda *a, **kw: FakeClock(start=clock.now()))


def test_verify_log_tells_rows_emptied_under_a_forgets_stamp_once_retention_covered_its_own(
    guard_core, clock, data_dir, cli_clock, capsys
):
    """Retention's reach over a forget's rows once left as many later rows free to be emptied
    by hand under its stamp (they were counted only past that reach)."""
    from checkpoint.app import Daemon

    for _ in range(3):
        add_event(guard_core, holder="Zhao Min", household="1-101", pass_id="aaaaaaaaaaaa")
    done = forget(
        guard_core.store, Person.of(name="Zhao Min", household="1-101"), clock.now(), actor="t"
    )
    clock.advance(46 * 86400)
    Daemon(guard_core).purge_once()
    add_event(guard_core, holder="Qian Hong", household="2-202", pass_id="bbbbbbbbbbbb")
    last = add_event(guard_core, holder="Sun Li", household="3-303", pass_id="cccccccccccc")
    guard_core.store.close()
    db = str(data_dir / "kiosk.db")
    assert main(["verify-log", "--db", db]) == 0
    capsys.readouterr()
    _empty_by_hand(db, [last.seq], done.purged_at)  # one: later than the forget
    assert main(["verify-log", "--db", db]) == 1
    assert "after that forget" in capsys.readouterr().err


def test_verify_log_tells_more_rows_under_a_forgets_stamp_than_it_emptied(
    guard_core, clock, data_dir, cli_clock, capsys
):
    """The count holds over the rows retention covered too: one earlier row emptied by hand
    under the stamp, after retention reached the forget's, is one too many."""
    from checkpoint.app import Daemon

    other = add_event(guard_core, holder="Qian Hong", household="2-202", pass_id="bbbbbbbbbbbb")
    clock.advance(40 * 86400)
    add_event(guard_core, holder="Zhao Min", household="1-101", pass_id="aaaaaaaaaaaa")
    done = forget(
        guard_core.store, Person.of(name="Zhao Min", household="1-101"), clock.now(), actor="t"
    )
    clock.advance(46 * 86400)
    Daemon(guard_core).purge_once()
    guard_core.store.close()
    db = str(data_dir / "kiosk.db")
    assert main(["verify-log", "--db", db]) == 0
    capsys.readouterr()
    conn = sqlite3.connect(db)
    with conn:  # the purged row re-stamped as the forget's: its count is exceeded
        conn.execute("UPDATE events SET purged_at = ? WHERE seq = ?", [done.purged_at, other.seq])
    conn.close()
    assert main(["verify-log", "--db", db]) == 1
    assert "emptied 1 rows of events, not 2" in capsys.readouterr().err


def test_force_keeps_another_households_quarantine_that_only_names_the_person(
    guard_core, clock, data_dir, cli_clock, capsys
):
    """``--force`` once deleted every quarantine entry whose note named the resident: a close
    contact's, still in force, went with theirs. Only theirs goes; the other's note is emptied
    and the dry run says which are theirs."""
    today = clock.now().date()
    add_event(guard_core, holder="Zhao Min", household="1-101", pass_id="aaaaaaaaaaaa")
    until = today + timedelta(days=14)
    guard_core.lists.add_quarantine("1-101", "Zhao Min", today, until, "alice", note="positive")
    note = "close contact of Zhao Min"
    guard_core.lists.add_quarantine("7-702", "Qian Hong", today, until, "alice", note=note)
    guard_core.store.close()
    keys = ["--name", "Zhao Min", "--household", "1-101", "--db", str(data_dir / "kiosk.db")]
    assert main(["person", "forget", *keys]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["rows"]["list_quarantine"] == 2
    assert dry["mentioned"] == {"list_quarantine": 1}
    assert dry["active"] == {"list_quarantine": 1}  # theirs: the other stays in force
    assert main(["person", "forget", *keys, "--yes", "--force"]) == 0
    conn = sqlite3.connect(data_dir / "kiosk.db")
    left = conn.execute("SELECT household, holder, note FROM list_quarantine").fetchall()
    assert left == [("7-702", "Qian Hong", "")]


def test_keys_are_found_however_the_stores_spell_them(guard_core, clock):
    """Keys were compared with ``=`` as typed: a phone kept with spaces, a household in
    another case or full width, a name in capitals went unfound. Each is compared as the
    rest of the system compares it (``kiosk.people.key_of``)."""
    today = clock.now().date()
    add_event(guard_core, holder="li wei", household="ｂ－２０２", pass_id="aaaaaaaaaaaa")
    guard_core.lists.add_quarantine("b-202", "LI WEI", today, today + timedelta(days=14), "al")
    guard_core.ledgers.observation.register(
        name="Sun Li", household="4-404", phone="138 0013 8000", origin="X",
        date_back=today, actor="alice", note="",
    )  # fmt: skip
    person = {"name": "Zhou Yi", "unit": "5-505", "phone": "139-0013-9000", "note": "visit"}
    add_event(guard_core, kind="registration", person=person)
    add_event(guard_core, kind="vehicle", person={"plate": "京a·12345", "note": ""})
    db = guard_core.store.reader()

    whole = find(db, Person.of(household="B-202"), today)
    assert whole.counts() == {"events": 1, "audit": 1, "list_quarantine": 1}
    named = find(db, Person.of(name="Li Wei", household="B-202"), today)
    assert named.counts() == {"events": 1, "list_quarantine": 1}
    assert named.passes == ("aaaaaaaaaaaa",)
    assert find(db, Person.of(phones=["13800138000"]), today).counts() == {"obs_people": 1}
    assert find(db, Person.of(phones=["139 0013 9000"]), today).counts() == {"events": 1}
    assert find(db, Person.of(plates=["京A 12345"]), today).counts() == {"events": 1}


def test_a_name_narrowed_to_a_household_leaves_namesakes_elsewhere_untouched(
    guard_core, clock, data_dir
):
    """``--name 王伟 --household 1-101`` once emptied 王伟东 of 2-301 and another 王伟 of 3-501
    (a registration's name was searched as a substring of its whole record)."""
    mine = add_event(guard_core, holder="王伟", household="1-101", pass_id="aaaaaaaaaaaa")
    visit = {"name": "王伟东", "unit": "2-301", "note": "visit"}
    add_event(guard_core, kind="registration", person=visit)
    add_event(guard_core, kind="registration", person={**visit, "name": "王伟", "unit": "3-501"})
    person = Person.of(name="王伟", household="1-101")
    found = find(guard_core.store.reader(), person, clock.now().date())
    assert [r["seq"] for r in found.rows["events"]] == [mine.seq]
    forget(guard_core.store, person, clock.now(), actor="t")
    conn = sqlite3.connect(data_dir / "kiosk.db")
    kept = conn.execute("SELECT person FROM events WHERE purged_at IS NULL ORDER BY seq")
    assert [json.loads(p)["name"] for (p,) in kept] == ["王伟东", "王伟"]


def test_a_name_alone_held_in_two_households_is_refused_and_revokes_nobody(
    guard_core, clock, data_dir, cli_clock, capsys
):
    """``--name 王伟`` alone once revoked every namesake's pass. Refused now, the households
    counted (never named); with ``--household`` only the person's pass is revoked."""
    add_event(guard_core, holder="王伟", household="1-101", pass_id="aaaaaaaaaaaa")
    add_event(guard_core, holder="王伟", household="９-９０９", pass_id="bbbbbbbbbbbb")
    add_event(guard_core, holder="王伟", household="9-909", pass_id="bbbbbbbbbbbb")
    guard_core.store.close()
    db = ["--db", str(data_dir / "kiosk.db")]
    for verb in (["show"], ["forget"], ["forget", "--yes", "--force"]):
        assert main(["person", *verb, "--name", "王伟", *db]) == 2
        err = capsys.readouterr().err
        assert "2 households" in err
        assert "1-101" not in err and "9-909" not in err
    conn = sqlite3.connect(data_dir / "kiosk.db")
    assert conn.execute("SELECT count(*) FROM list_revocations").fetchone() == (0,)
    assert main(["person", "forget", "--name", "王伟", "--household", "1-101", "--yes", *db]) == 0
    revoked = conn.execute("SELECT pass_id FROM list_revocations").fetchall()
    assert revoked == [("aaaaaaaaaaaa",)]


def _one_visit(guard_core):
    add_event(guard_core, holder="Zhao Min", household="1-101", pass_id="aaaaaaaaaaaa")
    guard_core.store.close()


@pytest.mark.parametrize("verb", [["show"], ["forget"], ["forget", "--yes"]])
def test_a_damaged_database_is_a_line_and_exit_1_not_a_traceback(
    guard_core, data_dir, cli_clock, capsys, monkeypatch, verb
):
    """A damaged page (``sqlite3.DatabaseError``) read by either verb was a traceback where
    cli.md promises exit 1 with a line."""
    import kiosk.people

    def damaged(*args, **kwargs):
        raise sqlite3.DatabaseError("database disk image is malformed")

    _one_visit(guard_core)
    monkeypatch.setattr(kiosk.people, "_found", damaged)  # show's find, forget's would_forget
    keys = ["--name", "Zhao Min", "--db", str(data_dir / "kiosk.db")]
    assert main(["person", *verb, *keys]) == 1
    assert "malformed" in capsys.readouterr().err


def test_show_whose_audit_row_cannot_be_written_is_exit_1_and_prints_nothing(
    guard_core, data_dir, cli_clock, capsys, monkeypatch
):
    """``show``'s audit row failing (``StoreFault``: the card refusing writes): exit 1 with
    the CLI's line for it, and the rows not printed without the row saying they were
    shown."""
    from kiosk.store import EventLog, StoreFault

    def refused(self, *args, **kwargs):
        raise StoreFault("store_fault", "disk I/O error")

    _one_visit(guard_core)
    monkeypatch.setattr(EventLog, "audit", refused)
    keys = ["--name", "Zhao Min", "--db", str(data_dir / "kiosk.db")]
    assert main(["person", "show", *keys]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "Zhao Min" not in err
    assert "could not be written" in err


def test_the_rows_retention_purged_are_never_folded(guard_core, clock, monkeypatch):
    """``person_key`` is a Python function called a row: it once ran over every row of a log
    a year long, the purged ones too, while ``forget`` held the write lock. Rows retention
    purged (most of such a log) are passed over before it is called."""
    import kiosk.people

    for i in range(40):
        add_event(guard_core, holder=f"P{i}", household=f"{i}-101", pass_id=f"{i:012x}")
    conn = sqlite3.connect(guard_core.store.path)
    with conn:
        conn.execute(
            "UPDATE events SET holder = NULL, household = NULL, pass_id = NULL, person = NULL,"
            " purged_at = '2026-01-01T00:00:00.000000Z' WHERE seq > 1"
        )
    conn.close()
    calls = []
    real = kiosk.people.key_of
    monkeypatch.setattr(kiosk.people, "key_of", lambda k, v: calls.append(v) or real(k, v))
    found = find(
        guard_core.store.reader(), Person.of(name="P0", household="0-101"), clock.now().date()
    )
    assert found.counts() == {"events": 1}
    assert len(calls) < 40


def test_no_connection_keeps_the_folded_names_after_a_search(guard_core, clock):
    """``find``'s cached ``person_key`` holds the names and notes it folded: registered on
    a connection kept open (the daemon's reader), it kept them after the search, the
    forgotten resident's too. The cache is the search's and goes with it; the function stays
    (defined once: never redefined on a connection another thread may be querying) and
    caches nothing between searches."""
    import kiosk.people as people

    add_event(guard_core, holder="Zhao Min", household="1-101", pass_id="aaaaaaaaaaaa")
    db = guard_core.store.reader()
    find(db, Person.of(name="Zhao Min"), clock.now().date())
    assert getattr(people._KEYS_CACHE, "key", None) is None  # the search's cache gone
    assert db.execute("SELECT person_key('text', 'Zhao Min')").fetchone()[0] == "zhao min"
    assert getattr(people._KEYS_CACHE, "key", None) is None


def test_forget_given_the_previews_version_refuses_a_change_since_in_its_transaction(
    guard_core, clock
):
    """``seen``: what the preview listed (``Found.version``), compared in the forget's own
    transaction; a passage since, nothing forgotten. The CLI gives none: forgets what is
    there."""
    from kiosk.people import PersonChanged

    add_event(guard_core, holder="Zhao Min", household="1-101", pass_id="aaaaaaaaaaaa")
    person = Person.of(name="Zhao Min")
    seen = find(guard_core.store.reader(), person, clock.now().date()).version()
    add_event(guard_core, holder="Zhao Min", household="1-101", pass_id="aaaaaaaaaaaa")
    with pytest.raises(PersonChanged):
        forget(guard_core.store, person, clock.now(), actor="root", seen=seen)
    assert find(guard_core.store.reader(), person, clock.now().date()).counts() == {"events": 2}
    seen = find(guard_core.store.reader(), person, clock.now().date()).version()
    done = forget(guard_core.store, person, clock.now(), actor="root", seen=seen)
    assert done.rows["events"] == 2


def test_a_search_folds_each_value_the_log_holds_once_not_each_row(store, monkeypatch):
    """``find`` on a long log: each distinct value is folded once (``SELECT DISTINCT``), the
    rows selected by their values as spelled; a comparison called row by row took ~2 s of
    a Pi for 100,000 events."""
    from datetime import date

    import kiosk.people as people
    from kiosk.store import EventDraft

    for i in range(120):
        holder = "Wang Lei" if i % 40 == 0 else "Li Na"
        store.append(
            EventDraft(direction="in", decision="pass", pass_id=f"{i:012x}", holder=holder)
        )
    folded: list[object] = []
    real = people._person_key  # what folds a store's value (SQL ``person_key`` too)

    def counting(kind: str, value: object) -> str | None:
        folded.append(value)
        return real(kind, value)

    monkeypatch.setattr(people, "_person_key", counting)
    found = people.find(store.reader(), Person.of(name="Wang Lei"), date(2026, 3, 2))
    assert len(found.rows["events"]) == 3
    assert len(folded) < 10  # each holder about once: not 120 rows, nor three scans of them
    assert set(folded) == {"Li Na", "Wang Lei"}


def test_a_phone_kept_as_a_number_is_found_and_forgotten(guard_core, clock):
    """A guard's record keeps a ``person`` value that is no text as it was given
    (``kiosk.engine._typed_person``): a replay scenario's ``phone = 13900139000`` (TOML) is
    kept as a JSON number, which ``--phone`` never found (compared as text only). A number
    in a phone's field is compared as its digits."""
    today = clock.now().date()
    add_event(guard_core, kind="registration", person={"name": "Zhou Min", "phone": 13900139000})
    add_event(guard_core, kind="registration", person={"name": "Other", "phone": 13700137000})
    person = Person.of(phones=["139 0013 9000"])
    assert find(guard_core.store.reader(), person, today).counts() == {"events": 1}
    assert forget(guard_core.store, person, clock.now(), actor="cli").rows == {"events": 1}
    held = [e["person"] for e in guard_core.store.events(0, 10)]
    assert held[0] is None and held[1]["phone"] == 13700137000
