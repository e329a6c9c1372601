"""A pass the north gate did not open for is no outing at the south gate either.

The north gate commits a pass, then its relay fails to open: the row after it (``deny``
``gate_fault`` flagged ``not_opened:<seq>``) says nobody went through. Its peers' page served
the pass as a passage all the same, so the south gate held it: the resident's next try there
was refused as passback, the household's outing used up. The page now leaves such a pass out
and names every pass of its look-back the gate did not open for (``not_opened``); the asking
gate drops the rows it holds of them, and their history entries (``kiosk.peers``)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import test_compound_gates
from test_compound_gates import NOW, Gate, hostile, page, poked_gates, resident, row

from kiosk.clock import FakeClock
from kiosk.peers import MAX_PAGE_NOT_OPENED
from kiosk.store import EventDraft

#: The north and south gates of the compound tests, on this module's clock.
north, south = test_compound_gates.north, test_compound_gates.south


@pytest.fixture
def gates(north, south):
    """North, and south asking it (``test_compound_gates``' gates, on this module's clock)."""
    return north, south


@pytest.fixture
def clock():
    return FakeClock(start=NOW)


def _not_opened(gate: Gate) -> int:
    """The gate's relay failed on its last pass: the row after it says so; the pass's seq."""
    [last] = gate.core.store.reader().execute(
        "SELECT seq, pass_id, household, direction FROM events ORDER BY seq DESC LIMIT 1"
    )
    seq, pass_id, household, direction = last
    gate.core.store.append(
        EventDraft(
            direction=direction,
            decision="deny",
            reasons=("gate_fault",),
            pass_id=pass_id,
            household=household,
            flags=(f"not_opened:{seq}",),
        )
    )
    return int(seq)


def test_a_pass_fetched_before_its_gate_said_it_did_not_open_is_dropped_at_the_peer(
    gates, clock, monkeypatch
):
    north, south = gates
    sync = south.peer_of(north, monkeypatch)
    card = resident(holder="Wang L")
    assert north.passage(card)["decision"] == "pass"
    sync.poll()
    assert sync.ledger.held() == {"gate-north": 1}  # fetched before the relay's failure was known
    _not_opened(north)
    clock.advance(30)
    sync.poll()
    assert sync.ledger.held() == {}
    assert south.core.history.exits_in_period("1-101", clock.now(), 2) == 0
    # The resident, let through by nobody at the north gate, goes out at the south gate.
    assert south.passage(card) == {"decision": "pass", "reasons": ["ok"]}


def test_a_pass_its_gate_did_not_open_for_is_dropped_at_the_peer_before_its_next_poll(
    tmp_path, clock, monkeypatch
):
    """The north gate told its peers of the pass at once; the row saying its relay did not open
    for it was told to nobody: the south gate held the pass until its next poll (10 s), and the
    resident sent there by the guard was refused as passback, the household over its quota.
    That row is news too (the engine's ``recorded`` message on the bus, naming the pass): the
    south gate asks now and drops the pass."""
    with poked_gates(tmp_path, clock, monkeypatch) as (north, south, told, asking, asked):
        card = resident(holder="Wang L")
        assert north.passage(card)["decision"] == "pass"
        asking.start()
        assert asked.acquire(timeout=10)  # its first ask, at the start: the pass is held
        assert asking.ledger.held() == {"gate-north": 1}
        seq = _not_opened(north)
        told.news({"type": "recorded", "seq": seq + 1, "decision": "deny", "not_opened": seq})
        assert told.push() == {"gate-south": 202}
        assert asked.acquire(timeout=10)  # woken by the north gate, not by its hour's poll
        assert asking.ledger.held() == {}
        assert south.passage(card) == {"decision": "pass", "reasons": ["ok"]}


def test_a_pass_its_gate_did_not_open_for_is_never_served_as_a_passage(gates, clock, monkeypatch):
    north, south = gates
    sync = south.peer_of(north, monkeypatch)
    card = resident(holder="Wang L")
    north.passage(card)
    seq = _not_opened(north)
    north.passage(resident("2-202"))
    sync.poll()
    held = south.core.store.reader().execute("SELECT household FROM peer_passages").fetchall()
    assert held == [("2-202",)]
    assert sync.ledger.cursor("gate-north") == seq + 2  # the cursor passes it
    # A history rebuilt from what the south gate holds (as at its start) counts 2-202 alone.
    assert south.core.runner._load_history() == 1
    assert south.passage(resident(holder="Wang M"))["decision"] == "pass"  # the quota is whole


def test_a_row_dropped_leaves_the_other_outings_held(gates, clock, monkeypatch):
    north, south = gates
    sync = south.peer_of(north, monkeypatch)
    north.passage(resident("2-202"))
    north.passage(resident())
    sync.poll()
    _not_opened(north)
    sync.poll()
    assert sync.ledger.held() == {"gate-north": 1}
    assert south.core.history.exits_in_period("2-202", clock.now(), 2) == 1
    assert south.core.history.exits_in_period("1-101", clock.now(), 2) == 0
    sync.poll()  # said again at every page: nothing more goes, nothing is written
    assert sync.ledger.held() == {"gate-north": 1}


def _page_with(not_opened: object, *rows: dict) -> str:
    body = json.loads(page(*rows))
    body["not_opened"] = not_opened
    return json.dumps(body)


@pytest.mark.parametrize(
    ("said", "error"),
    [
        ("7", "not_opened is '7'"),
        ([1, "2"], "not a seq"),
        ([-1], "not a seq"),
        ([True], "not a seq"),
        ([2**63], "not a seq"),
        (list(range(MAX_PAGE_NOT_OPENED + 1)), f"at most {MAX_PAGE_NOT_OPENED}"),
    ],
)
def test_a_hostile_not_opened_list_refuses_the_page_whole(gates, monkeypatch, said, error):
    _, south = gates
    sync = hostile(south, monkeypatch, _page_with(said, row()))
    sync.poll()
    [peer] = south.core.health()["peers"]
    assert error in peer["last_error"]
    assert sync.ledger.held() == {} and sync.ledger.cursor("gate-north") == 0


def test_a_page_without_the_list_is_an_older_gate_and_kept_as_before(gates, monkeypatch):
    _, south = gates
    sync = hostile(south, monkeypatch, page(row()))
    sync.poll()
    assert sync.ledger.held() == {"gate-north": 1}


def test_a_pass_this_gate_did_not_open_for_is_no_breach_found_late(tmp_path, clock):
    """The north gate's relay failed on the resident's pass (nobody went through); the resident
    went out at the south gate. Reading the south gate's outing, the north gate counted its own
    pass as the household's outing before it: "over the quota, found late", a card for the
    guard about a household that went out once."""
    from zoneinfo import ZoneInfo

    from kiosk import peers
    from kiosk.config.policy import QuotaConfig
    from kiosk.store import EventLog, format_ts

    store = EventLog(
        tmp_path / "k.db", "gate-north", clock, "NORMAL", migrations=[peers.MIGRATIONS]
    )
    log = store.open()
    try:
        passed = log.append(EventDraft(direction="out", decision="pass", household="1-101"))
        log.append(
            EventDraft(direction="out", decision="deny", reasons=("gate_fault",),
                       household="1-101", flags=(f"not_opened:{passed.seq}",))
        )  # fmt: skip
        clock.advance(300)

        def keep(db) -> None:
            db.table("peer_passages").insert(
                {"kiosk_id": "gate-south", "seq": 4, "household": "1-101", "direction": "out",
                 "decision": "pass", "ts": format_ts(clock.now()), "flags": "[]",
                 "fetched_at": format_ts(clock.now())}
            )  # fmt: skip

        log.submit(keep)
        quota = QuotaConfig(enabled=True, exits=1, period_days=2)
        tz = ZoneInfo("Asia/Shanghai")
        assert peers.late_breaches(log.reader(), 0, "gate-north", quota, tz) == ([], 1)
    finally:
        store.close()


def test_a_pass_is_taken_back_by_its_not_opened_row_stamped_past_the_window(tmp_path, clock):
    """``_outings`` read this gate's rows stamped within the window and took a pass back by a
    ``not_opened`` row among them: the row saying the relay did not open for a pass at the
    window's end is stamped a moment after it, past the end, and the pass counted as an outing.
    It is matched by the pass's seq, wherever it is stamped."""
    from kiosk import peers
    from kiosk.store import EventLog, format_ts

    store = EventLog(
        tmp_path / "k.db", "gate-north", clock, "NORMAL", migrations=[peers.MIGRATIONS]
    )
    log = store.open()
    try:
        log.append(EventDraft(direction="out", decision="pass", household="2-202"))
        passed = log.append(EventDraft(direction="out", decision="pass", household="1-101"))
        end = clock.now() + timedelta(milliseconds=500)  # the window ends after the pass...
        clock.advance(1)  # ...and before the relay's failure was known
        log.append(
            EventDraft(direction="out", decision="deny", reasons=("gate_fault",),
                       household="1-101", flags=(f"not_opened:{passed.seq}",))
        )  # fmt: skip
        lo, hi = format_ts(NOW - timedelta(days=3)), format_ts(end)
        assert peers._outings(log.reader(), "1-101", "gate-north", lo, hi) == []
        assert [o.seq for o in peers._outings(log.reader(), "2-202", "gate-north", lo, hi)] == [1]
    finally:
        store.close()


def _recent_log(path, rows: int):
    """A log of ``rows`` passages within the quota's look-back (an hour ago), counting
    SQLite's steps on its reader (as tests/test_year_of_rows.py does)."""
    import sqlite3
    from datetime import timedelta

    from test_year_of_rows import _Log

    from kiosk.store import EventLog

    with EventLog(path, "gate-1", FakeClock(start=NOW - timedelta(hours=1)), "NORMAL") as log:
        log.append(EventDraft(direction="out", decision="pass", reasons=("ok",)))
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO events (seq, id, kiosk_id, ts, boot_id, mono_ns, clock_synced,"
            " direction, decision, reasons, kind, flags, personal_digest, prev_hash, hash)"
            " SELECT i, 'id-' || i, kiosk_id, ts, boot_id, mono_ns, clock_synced, direction,"
            " decision, reasons, kind, flags, personal_digest, prev_hash, hash FROM events, n"
            " WHERE seq = 1",
            [rows],
        )
    conn.close()
    return _Log(path)


@pytest.mark.slow
def test_a_peers_poll_at_the_head_reads_no_look_back_for_the_passes_not_opened(tmp_path):
    """A peer asks every few seconds, from its cursor at this gate's head: the passes this gate
    did not open for that it must hear of are written after that cursor (each row after its
    pass, and the pass after what the peer fetched). Read by time, the list walked the whole
    quota look-back (days of passages) at every poll of every peer."""
    from datetime import timedelta

    from kiosk.peers import peer_page

    since = NOW - timedelta(days=3)
    logs = [_recent_log(tmp_path / f"{n}.db", n) for n in (2_000, 20_000)]
    steps = []
    for log, head in zip(logs, (2_000, 20_000), strict=True):
        log.steps = 0
        page = peer_page(log.reader(), "gate-1", head, 500, since)
        assert page["passages"] == [] and page["not_opened"] == []
        steps.append(log.steps)
    assert steps[1] - steps[0] < 20, steps
