"""Records held through a store fault and the commits after them (``Engine._after_held``): while
records are held, a new one goes to the log only after them, in decision order; a held
record's look for the same registration ends at its own decision; the store's card stays
until the last held record is written."""

from __future__ import annotations

from test_engine import Rig
from test_registered_again import ZHANG

from kiosk.again import AGAIN_WINDOW_S, NotAgain
from kiosk.clock import ClockReading
from kiosk.queries import Since
from kiosk.store import EventDraft


def register(rig: Rig, clock, operator: str, direction: str) -> None:
    """Zhang Guiying let through ``direction`` by ``operator``, unless already recorded so."""
    since = Since.ago(ClockReading.take(clock), AGAIN_WINDOW_S, "t")
    rig.engine.manual(
        "manual_pass", operator, "no phone", direction, person=ZHANG, kind="registration",
        temp_c=36.5, unless=NotAgain("registration", ZHANG, direction, since),
    )  # fmt: skip
    rig.run(0.2)


def written(rig: Rig) -> list[tuple[str, str]]:
    return [(e["operator"], e["direction"]) for e in rig.events()]


def test_held_out_held_in_then_out_as_the_card_comes_back_is_written_in_that_order(clock, tmp_path):
    """Out (alice, held), back in a minute later (bob, held), out again (carol) as the card
    comes back: carol's commit used to land before the held ones, and alice's outing, then
    looking like carol's recorded again, was dropped: the log ended "in" while she was out."""
    rig = Rig(clock, tmp_path, policy={"on_store_fault": "manual"})
    try:
        rig.store.fail()
        register(rig, clock, "alice", "out")
        clock.advance(60)
        register(rig, clock, "bob", "in")
        assert len(rig.engine.backlog) == 2
        clock.advance(60)
        rig.store.recover()
        register(rig, clock, "carol", "out")
        rig.run(rig.config.engine.idle_probe_s * 2)
        assert written(rig) == [("alice", "out"), ("bob", "in"), ("carol", "out")]
        assert not [m for m in rig.messages if m.get("alarm") == "held_pass_dropped"]
    finally:
        rig.close()


def test_back_in_as_the_card_comes_back_is_written_after_the_held_outing(clock, tmp_path):
    """Out (alice, held); back in (bob) as the card comes back: the log ends "in"."""
    rig = Rig(clock, tmp_path, policy={"on_store_fault": "manual"})
    try:
        rig.store.fail()
        register(rig, clock, "alice", "out")
        clock.advance(60)
        rig.store.recover()
        register(rig, clock, "bob", "in")
        rig.run(rig.config.engine.idle_probe_s * 2)
        assert written(rig) == [("alice", "out"), ("bob", "in")]
    finally:
        rig.close()


def test_a_resident_while_the_held_records_still_fail_is_held_after_them(clock, tmp_path):
    """The card still refuses: a resident's passage is not tried before the held record (it
    is answered as the store fault, not committed) and is held after it; once the card is
    back both are written, the held one first."""
    rig = Rig(clock, tmp_path, policy={"on_store_fault": "manual"})
    try:
        rig.store.fail()
        register(rig, clock, "alice", "out")
        rig.run(rig.config.engine.result_hold_s + rig.config.gate.pulse_ms / 1000 + 1)
        rig.resident_comes(3)
        assert rig.decisions()[-1]["committed"] is False
        assert [d.kind for d in rig.engine.backlog] == ["registration", "passage"]
        rig.store.recover()
        rig.run(rig.config.engine.idle_probe_s * 3)
        assert [e["kind"] for e in rig.events()] == ["registration", "passage"]
    finally:
        rig.close()


def test_the_store_card_stays_until_the_last_held_record_is_written(clock, tmp_path):
    """Two records held; the card comes back: the first written is not "store is back" while
    the second still waits in memory."""
    rig = Rig(clock, tmp_path, policy={"on_store_fault": "manual"})
    try:
        rig.store.fail()
        register(rig, clock, "alice", "out")
        register(rig, clock, "bob", "in")
        rig.store.recover()
        seen: list[tuple[int, bool]] = []
        append = rig.store.append

        def watched(draft: EventDraft):
            seen.append((len(rig.events()), "store" in rig.engine.faults))
            return append(draft)

        rig.store.append = watched
        rig.engine.flush_backlog()
        assert seen == [(0, True), (1, True)]  # at the second's commit, the card still up
        assert "store" not in rig.engine.faults
        assert [m["state"] for m in rig.messages if m.get("alarm") == "store_fault"] == [
            "raised", "cleared",
        ]  # fmt: skip
    finally:
        rig.close()


def test_a_held_records_look_ends_at_its_own_decision(clock, tmp_path):
    """Another writer put the same visitor's outing, decided after the held one, in the log
    first: the held one's look, as the log stood when its guard decided, does not count it
    (it is not the held outing recorded again)."""
    rig = Rig(clock, tmp_path, policy={"on_store_fault": "manual"})
    try:
        rig.store.fail()
        register(rig, clock, "alice", "out")
        clock.advance(60)
        rig.store.recover()
        rig.log.append(
            EventDraft(
                direction="out", decision="manual_pass", reasons=("guard_override",),
                operator="dave", kind="registration", person=ZHANG,
            )
        )  # fmt: skip
        rig.engine.flush_backlog()
        assert written(rig) == [("dave", "out"), ("alice", "out")]
    finally:
        rig.close()
