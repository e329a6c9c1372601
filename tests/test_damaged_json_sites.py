"""A stored JSON field that is not JSON (an SD card's bit rot, a hand edit: ``kiosk
verify-log``'s "unreadable value") read where the stored text used to go to ``json.loads``
straight: the compound's other gate's pull of this gate's passages, its copy of them read at
start and when a gate says it did not open, a person's search and forget, the guard's
live page. Each is damaged as a card damages it (an UPDATE on the SQLite file) and read
through the user's path; nothing is written outside ``tmp_path``."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from guard_support import BASE, login, make_app
from support import reporting_log
from test_compound_gates import KEY, NOW
from test_damaged_rows import DAY, damage, fever_let_through
from test_peer_revocations import card, gates  # noqa: F401 (a fixture)

from kiosk.clock import FakeClock
from kiosk.history import PassageHistory
from kiosk.passes import issue_pass
from kiosk.peers import load_peer_rows
from kiosk.people import Person, find, forget, forgotten_passages
from kiosk.stats import daily_report
from kiosk.store import EventDraft, EventLog

#: A flags text the card left unreadable.
BROKEN_FLAGS = '["role:'


def _edit(path, sql: str, *args: object) -> None:
    """``sql`` on the file by hand, its append-only triggers dropped as an editor would."""
    db = sqlite3.connect(path)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f'DROP TRIGGER "{name}"')
    db.execute(sql, args)
    db.commit()
    db.close()


def _held(gate) -> list[tuple[int, str | None]]:
    rows = gate.core.store.reader().execute("SELECT seq, household FROM peer_passages ORDER BY seq")
    return [(int(s), h) for s, h in rows.fetchall()]


def test_a_damaged_passage_does_not_stop_the_other_gates_pull(gates, clock):  # noqa: F811
    """North's first passage's flags damaged: its page to south was a 500, and south's pull
    stopped there for good, neither it nor any later passage counted against the household's
    quota at south. The page serves it now, its flags read as none (not exempt, no role: it
    counts as any resident's outing), and the passages after it follow."""
    north, south = gates
    code, _ = card("Wang L")
    assert north.passage(code, "out")["decision"] == "pass"
    _edit(north.core.store.path, "UPDATE events SET flags = ? WHERE seq = 1", BROKEN_FLAGS)
    clock.advance(60)
    other, _ = issue_pass(KEY, "1-102", "Li M", "resident", 30, now=NOW - timedelta(days=1))
    assert north.passage(other, "out")["decision"] == "pass"
    clock.advance(5)
    south.sync.poll()
    assert south.sync.states["gate-north"].last_error is None
    assert _held(south) == [(1, "1-101"), (2, "1-102")]
    flags = south.core.store.reader().execute("SELECT flags FROM peer_passages WHERE seq = 1")
    assert json.loads(flags.fetchone()[0]) == []


def test_a_damaged_copy_of_a_peers_passage_is_counted_at_start(gates, clock, caplog):  # noqa: F811
    """South's copy of north's passage damaged: reading the peers' rows at start raised, so
    the daemon could not start. It is counted now as an outing of no role (never exempt),
    and said by the peer and seq alone."""
    north, south = gates
    code, _ = card("Wang L")
    assert north.passage(code, "out")["decision"] == "pass"
    south.sync.poll()
    _edit(south.core.store.path, "UPDATE peer_passages SET flags = ?", BROKEN_FLAGS)
    history = PassageHistory()
    assert load_peer_rows(south.core.store.reader(), history, clock.now() - timedelta(days=1)) == 1
    assert history.exits_in_period("1-101", clock.now(), 1) == 1
    assert "gate-north seq 1" in caplog.text and "Wang" not in caplog.text


def test_a_damaged_copy_is_dropped_when_its_gate_did_not_open(gates, clock):  # noqa: F811
    """North says it did not open for a passage whose copy at south is damaged: south's pull
    raised and stopped there for good. The copy is dropped as any other."""
    north, south = gates
    code, _ = card("Wang L")
    assert north.passage(code, "out")["decision"] == "pass"
    south.sync.poll()
    _edit(south.core.store.path, "UPDATE peer_passages SET flags = ?", BROKEN_FLAGS)
    dropped = south.sync.ledger.drop_not_opened("gate-north", [1])
    assert [(row.seq, row.exempt, row.role) for row in dropped] == [(1, False, None)]
    assert _held(south) == []


def _log(tmp_path, clock) -> EventLog:
    return EventLog(tmp_path / "k.db", "gate-1", clock).open()


def test_a_damaged_person_does_not_stop_a_search_or_a_forget(tmp_path):
    """Another visitor's registration whose person text is damaged: every search by name and
    every forget failed (SQLite's ``malformed JSON``), the right to be forgotten with them.
    The damaged row is no one's by its person now; the person asked about is found and
    forgotten, and the damaged row is still found by its household, the copy of it given to
    its resident holding its text as stored."""
    clock = FakeClock(start=datetime(2026, 10, 25, 9, 0, tzinfo=UTC))
    log = _log(tmp_path, clock)
    log.append(EventDraft(direction="in", decision="deny", person={"name": "Other V"}))
    log.append(EventDraft(direction="in", decision="deny", person={"name": "Zhao Visitor"}))
    log.append(
        EventDraft(direction="in", decision="deny", household="2-202", person={"name": "Kept"})
    )
    log.close()
    for seq in (1, 3):
        _edit(tmp_path / "k.db", "UPDATE events SET person = '{\"name\": ' WHERE seq = ?", seq)
    log = _log(tmp_path, clock)
    try:
        today = clock.now().date()
        theirs = find(log.reader(), Person.of(household="2-202"), today)
        # The resident's copy holds the damaged text as it is stored (nothing of it lost).
        assert [r["person"] for r in theirs.as_dict()["stores"]["events"]] == ['{"name": ']
        done = forget(log, Person.of(name="Zhao Visitor"), clock.now(), actor="root")
        assert done.rows["events"] == 1
        left = log.reader().execute("SELECT seq FROM events WHERE person IS NOT NULL")
        assert [s for (s,) in left.fetchall()] == [1, 3]
    finally:
        log.close()


def _feed_with_damaged_reasons(guard_core, clock, path: str) -> dict:
    """The guard's feed at ``path`` (a guard logged in) once row 1's reasons are damaged."""
    damage(guard_core.store.path, "reasons", seq=1)
    clock.advance(60)
    with TestClient(make_app(guard_core), base_url=BASE, raise_server_exceptions=False) as c:
        login(c)
        answer = c.get(path)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_live_feed_reads_a_damaged_row_a_guard_decided_about(guard_core, clock):
    """A guard's pass over a fever deny whose reasons are damaged, the deny not among the
    rows the feed reads (``?after=1``: off the page): reading whether the gate had judged it
    a fever raised, and the guard's live feed was a 500 from then on. The damaged row reads
    as no fever judged (its reasons read as nothing, as every reader of it reads them)."""
    fever_let_through(guard_core.store, clock, holder="Zhangsan Secret", household="A-101")
    rows = _feed_with_damaged_reasons(guard_core, clock, "/guard/api/feed?after=1")["rows"]
    assert [(row["seq"], row["fever"]) for row in rows] == [(2, False)]


def test_a_damaged_car_is_counted_in_the_days_community_figures(tmp_path):
    """Where the day's community figures read a car's ``person`` (its occupants, its plate)
    the rows come through ``kiosk.unreadable.readable_rows`` already: a damaged car refused
    at the gate is counted as a car of no one known (no occupants, no plate), said in
    ``unreadable_rows``; nothing raised before this change either."""
    clock = FakeClock(start=datetime(2026, 10, 25, 9, 0, tzinfo=UTC))
    store = reporting_log(tmp_path / "k.db", clock)
    try:
        car = {"plate": "粤B12345", "driver": "Zhao D", "occupants": 2}
        store.append(EventDraft(direction="in", decision="deny", kind="vehicle", person=car))
        store.append(EventDraft(direction="in", decision="deny", kind="vehicle", person=car))
        damage(store.path, "person", seq=2)
        report = daily_report(store.reader(), DAY, "Europe/Berlin")
    finally:
        store.close()
    assert report["unreadable_rows"] == 1
    assert report["community"]["vehicles"]["registrations"] == 2
    assert report["community"]["vehicles"]["occupants"] == 2


def test_a_damaged_forget_record_leaves_the_later_forgets_read(tmp_path):
    """The daemon drops from its history the passages each forget emptied, read off the
    forgets' audit rows: one whose detail is damaged is passed over (its passages stay
    counted against their household until the next start reads the log, which holds them
    emptied: never an outing less), the later ones read. Nothing raised before either."""
    clock = FakeClock(start=datetime(2026, 10, 25, 9, 0, tzinfo=UTC))
    log = _log(tmp_path, clock)
    try:
        for name in ("Wang A", "Li B"):
            log.append(EventDraft(direction="out", decision="pass", household="3-303", holder=name))
            clock.advance(60)
            forget(log, Person.of(name=name), clock.now(), actor="root", force=True)
        first, last = [int(s) for (s,) in log.reader().execute("SELECT seq FROM audit")][-2:]
        _edit(log.path, "UPDATE audit SET detail = '{\"purged_at\": ' WHERE seq = ?", first)
        seq, passages = forgotten_passages(log.reader(), 0)
    finally:
        log.close()
    assert seq == last and [direction for direction, _ in passages] == ["out"]


def test_a_damaged_issued_pass_record_does_not_stop_a_search(tmp_path):
    """A pass issued at the console whose audit detail is damaged: a search by name read
    every issued pass's holder with SQLite's ``json_extract`` and failed (``malformed
    JSON``), the resident's copy and forget with it. The record is passed over now (no
    pass read from it), the person's own rows found."""
    clock = FakeClock(start=datetime(2026, 10, 25, 9, 0, tzinfo=UTC))
    log = _log(tmp_path, clock)
    try:
        log.append(EventDraft(direction="in", decision="pass", household="4-404", holder="Sun C"))
        issued = {"pass_id": "0123456789ab", "holder": "Sun C", "household": "4-404"}
        log.audit("alice", "pass_issued", issued)
        log.audit("alice", "pass_issued", issued | {"pass_id": "ba9876543210"})
        seq = max(int(s) for (s,) in log.reader().execute("SELECT seq FROM audit"))
        _edit(log.path, "UPDATE audit SET detail = '{\"holder\": ' WHERE seq = ?", seq)
        found = find(log.reader(), Person.of(name="Sun C"), clock.now().date())
    finally:
        log.close()
    assert found.counts()["events"] == 1 and found.passes == ("0123456789ab",)


def test_the_alarm_desk_reads_a_damaged_fever_deny(guard_core, clock):
    """The desk reads the log's rows through ``kiosk.store.decode_event_row``
    (``kiosk.unreadable.decode_json``), so ``kiosk.alarms``' own decoding never meets the
    damaged text: a fever deny whose reasons are damaged still raises the card the engine
    recorded on it (``alarm:fever``); nothing raised before this change either."""
    guard_core.store.append(
        EventDraft(
            direction="in",
            decision="deny",
            reasons=("fever",),
            temp_c=38.5,
            flags=("alarm:fever",),
            holder="Zhangsan Secret",
        )
    )
    alarms = _feed_with_damaged_reasons(guard_core, clock, "/guard/api/feed")["alarms"]
    assert [(a["key"], a["kind"]) for a in alarms] == [("event:1", "fever")]
