"""The engine/runner seam's values: a Crossing out, one Outcome back (kiosk/crossing.py)."""

from __future__ import annotations

import pytest

from kiosk.crossing import Crossing, Outcome
from kiosk.devices import GateFault
from kiosk.store import AlreadyRecorded, Event, EventDraft, EventLog, StoreFault

DRAFT = EventDraft(direction="in", decision="pass")


@pytest.fixture
def event(clock, tmp_path) -> Event:
    log = EventLog(tmp_path / "events.db", "gate-1", clock, "NORMAL", boot_id="t").open()
    try:
        return log.append(DRAFT)
    finally:
        log.close()


def test_a_pass_opens_the_gate_only_once_committed(event):
    crossing = Crossing(DRAFT, open_if_committed=True)
    assert Outcome(crossing, event=event).opens_gate is True
    assert Outcome(crossing, store_fault=StoreFault()).opens_gate is False


def test_a_draft_the_log_refused_opens_no_gate_even_a_guards_pass_unrecorded(event):
    """A registration another tablet recorded a moment before (``kiosk.again``): nothing was
    decided, so no gate opens for it, where a guard's pass would open it unrecorded too."""
    crossing = Crossing(DRAFT, open_if_committed=True, open_if_unrecorded=True)
    refused = Outcome(crossing, refused=AlreadyRecorded({"seq": event.seq}))
    assert refused.opens_gate is False and not refused.committed
    with pytest.raises(ValueError):
        Outcome(crossing, event=event, refused=refused.refused)


def test_a_held_back_record_never_opens_the_gate():
    crossing = Crossing(DRAFT)
    assert not crossing.opens_gate(committed=True)
    assert not crossing.opens_gate(committed=False)


def test_an_outcome_is_committed_or_a_store_fault_never_both_nor_neither(event):
    crossing = Crossing(DRAFT)
    with pytest.raises(ValueError):
        Outcome(crossing)
    with pytest.raises(ValueError):
        Outcome(crossing, event=event, store_fault=StoreFault())


def test_a_gate_fault_needs_a_gate_command(event):
    with pytest.raises(ValueError):
        Outcome(Crossing(DRAFT), event=event, gate_fault=GateFault("relay"))


def test_the_gate_answer_keeps_what_the_log_said(event):
    crossing = Crossing(DRAFT, open_if_committed=True)
    fault = GateFault("relay did not answer")
    answered = Outcome(crossing, event=event).gate_answered(fault)
    assert answered == Outcome(crossing, event=event, gate_commanded=True, gate_fault=fault)
    assert answered.committed


def test_a_crossing_is_equal_only_to_itself():
    first, second = Crossing(DRAFT), Crossing(DRAFT)
    assert first != second
    assert {first: 1, second: 2}[first] == 1
