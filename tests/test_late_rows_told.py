"""A row the engine records after its decision was told is told on the bus when it is written.

A guard's manual pass given through a storage fault (``on_store_fault = "manual"``: the gate
opens on the guard's word, the record waits in the backlog) was announced as a decision not
committed, and its row, written from the backlog once the disk answered again, was announced
to nobody: the compound's other gates, told at once of every other passage, learnt of it only
at their next poll (10 s), the resident meanwhile let through at the south gate as if the
household's outing were unused, or a copied card not refused as passback. The row saying the
gate did not open for a pass was already published (``not_opened``); every row written late
now is, one way: ``{"type": "recorded", "seq", "decision", "not_opened"}``, and the gate
pokes its peers for a passing one or one that says a pass did not open."""

from __future__ import annotations

import pytest
import test_compound_gates
from test_compound_gates import NOW
from test_engine import Rig, _hold_crossings

from kiosk.clock import FakeClock
from kiosk.crossing import Outcome
from kiosk.store import StoreFault
from ui.views import ScreenTracker

#: The north and south gates of the compound tests, on this module's clock.
north, south = test_compound_gates.north, test_compound_gates.south


@pytest.fixture
def clock():
    return FakeClock(start=NOW)


@pytest.fixture
def guarded(clock, tmp_path):
    """A gate whose guard's word opens it through a storage fault."""
    r = Rig(clock, tmp_path / "rig", policy={"on_store_fault": "manual"})
    yield r
    r.close()


def _recorded(rig: Rig) -> list[dict]:
    return [m for m in rig.messages if m["type"] == "recorded"]


def _guard_passes_through_a_storage_fault(rig: Rig) -> None:
    rig.store.fail()
    rig.engine.manual("manual_pass", "guard-zhou", "known resident", "out")
    rig.run(0.5)
    assert [c.open_ for c in rig.gate.commands] == [True]
    assert rig.decisions()[-1]["committed"] is False
    assert _recorded(rig) == []


def test_a_guards_pass_held_through_a_storage_fault_is_told_when_its_row_is_written(guarded):
    _guard_passes_through_a_storage_fault(guarded)
    guarded.store.recover()
    guarded.run(2)
    [event] = guarded.events()
    told = _recorded(guarded)
    assert told == [
        {"type": "recorded", "seq": event["seq"], "decision": "manual_pass", "not_opened": None}
    ]
    # The screen shows nothing of it (the person went through long ago), nor a second decision.
    assert not ScreenTracker().feed(told[0])
    assert [d["committed"] for d in guarded.decisions()] == [False]


def test_a_guards_pass_whose_commit_landed_past_its_deadline_is_told_when_it_lands(guarded):
    held = _hold_crossings(guarded)
    guarded.engine.manual("manual_pass", "guard-zhou", "known resident", "out")
    [crossing] = held
    missed = StoreFault("store_fault", "commit not confirmed within 3000 ms")
    guarded.engine.on_crossed(Outcome(crossing, store_fault=missed, pending=True))
    assert guarded.decisions()[-1]["committed"] is False
    event = guarded.log.append(crossing.draft)  # ... but it did land
    guarded.engine.on_late_commit(crossing, event)
    assert _recorded(guarded) == [
        {"type": "recorded", "seq": event.seq, "decision": "manual_pass", "not_opened": None}
    ]


def test_a_deny_held_through_a_storage_fault_is_told_too(clock, tmp_path):
    rig = Rig(clock, tmp_path / "rig")
    try:
        rig.store.fail()
        rig.resident_comes(3)
        rig.store.recover()
        rig.run(2)
        [event] = rig.events()
        assert _recorded(rig) == [
            {"type": "recorded", "seq": event["seq"], "decision": "deny", "not_opened": None}
        ]
    finally:
        rig.close()


def test_the_peers_are_poked_for_the_guards_pass_written_late(guarded, north, south, monkeypatch):
    """The gate's own bus messages, as its peer sync follows them: before, the pass was news
    for nobody (its decision not committed, its row not told)."""
    sync = south.peer_of(north, monkeypatch)
    _guard_passes_through_a_storage_fault(guarded)
    for message in guarded.messages:
        sync.news(message)
    assert sync.push() == {}  # a decision not committed: nothing in the log to ask for yet
    seen = len(guarded.messages)
    guarded.store.recover()
    guarded.run(2)
    for message in guarded.messages[seen:]:
        sync.news(message)
    assert list(sync.push()) == ["gate-north"]


def test_a_late_row_is_news_only_when_it_passed_someone_or_says_a_pass_did_not_open(
    north, south, monkeypatch
):
    sync = south.peer_of(north, monkeypatch)
    for decision in ("deny", "manual_deny"):
        sync.news({"type": "recorded", "seq": 3, "decision": decision, "not_opened": None})
    assert sync.push() == {}
    sync.news({"type": "recorded", "seq": 4, "decision": "pass", "not_opened": None})
    assert list(sync.push()) == ["gate-north"]
    sync.news({"type": "recorded", "seq": 6, "decision": "deny", "not_opened": 5})
    assert list(sync.push()) == ["gate-north"]
