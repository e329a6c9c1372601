"""The 8:30 rush at the gate, what already holds: a shared screenshot, a household leaving
together, someone walking off mid-measure, a child on a paper pass behind a parent, and the
screen's cue for the next person only once the gate has locked.

The real engine, policy, thermometry (the MLX90614 emulator) and event log in virtual time
(``test_engine.Rig``). Each test would fail if the rule it names broke.
"""

from __future__ import annotations

import pytest
from test_engine import Rig


@pytest.fixture
def queue(clock, tmp_path):
    rig = Rig(clock, tmp_path, policy={"quota": {"enabled": True}})
    yield rig
    rig.close()


def _steps_up(rig: Rig, text: str, body_c: float, direction: str = "out", s: float = 6) -> None:
    """The one at the thermometer leaves, the next shows ``text`` and steps up."""
    rig.emulator.person_leaves()
    rig.run(0.5)
    rig.show(text, direction)
    rig.emulator.person_arrives(body_c)
    rig.run(s)


def _decided(rig: Rig) -> list[tuple[str, list[str], str | None]]:
    return [(d["decision"], d["reasons"], d["holder_initial"]) for d in rig.decisions()]


def test_a_screenshot_shown_by_a_second_person_the_same_way_is_a_passback_named_to_the_guard(
    clock, tmp_path
):
    rig = Rig(clock, tmp_path)
    shared = rig.pass_text(holder="Li Wei", household="1-101")
    _steps_up(rig, shared, 36.5)
    _steps_up(rig, shared, 36.7)  # her brother, from the family group's screenshot
    assert _decided(rig) == [("pass", ["ok"], "L."), ("deny", ["passback"], "L.")]
    assert rig.decisions()[1]["needs_guard"] is True
    [card] = [m for m in rig.messages if m["type"] == "alarm" and m["alarm"] == "guard_needed"]
    assert card["reasons"] == ["passback"]
    assert card["seq"] == rig.events()[1]["seq"]
    assert [e["decision"] for e in rig.events()] == ["pass", "deny"]
    rig.close()


def test_the_same_code_going_out_then_coming_back_is_a_trip_not_a_passback(queue):
    rig = queue
    text = rig.pass_text(holder="Li Wei")
    _steps_up(rig, text, 36.5, "out")
    _steps_up(rig, text, 36.5, "in")
    assert _decided(rig) == [("pass", ["ok"], "L.")] * 2


def test_two_members_leaving_one_after_another_are_two_outings_as_the_rule_says(queue):
    # docs/community.md: the rule is per household, one member per outing; the second member
    # leaving right behind the first is the household's second outing (exits = 1).
    rig = queue
    _steps_up(rig, rig.pass_text(holder="Li Wei", household="1-101"), 36.5)
    _steps_up(rig, rig.pass_text(holder="Wang Nan", household="1-101"), 36.6)
    _steps_up(rig, rig.pass_text(holder="Chen Jie", household="1-102"), 36.6)
    assert _decided(rig) == [
        ("pass", ["ok"], "L."),
        ("deny", ["quota_exceeded"], "W."),
        ("pass", ["ok"], "C."),
    ]


def test_the_second_member_in_the_quota_counts_the_first_even_kept_during_the_pulse(queue):
    # Wang's code shown while the gate is still open for Li starts when it locks: by then
    # Li's exit is in the history, so it is counted.
    rig = queue
    rig.show(rig.pass_text(holder="Li Wei", household="1-101"))
    rig.emulator.person_arrives(36.5)
    rig.run(2.2)
    assert rig.engine.state == "gate_open"
    rig.show(rig.pass_text(holder="Wang Nan", household="1-101"))
    rig.emulator.person_leaves()
    rig.run(0.5)
    rig.emulator.person_arrives(36.6)
    rig.run(8)
    assert _decided(rig) == [("pass", ["ok"], "L."), ("deny", ["quota_exceeded"], "W.")]


def test_someone_walking_off_mid_measure_leaves_no_reading_to_the_next_one(queue):
    rig = queue
    rig.show(rig.pass_text(holder="Li Wei", household="1-101"))
    rig.emulator.person_arrives(36.5)
    rig.run(0.4)  # not yet measured
    rig.emulator.person_leaves()
    rig.run(0.6)
    rig.emulator.person_arrives(38.6)  # the next one, feverish, steps in
    rig.run(1.0)
    rig.show(rig.pass_text(holder="Wang Nan", household="1-102"))
    rig.run(8)
    first, second = rig.events()
    assert (first["decision"], first["reasons"], first["temp_c"]) == (
        "deny",
        ["no_temperature"],
        None,
    )
    assert (second["decision"], second["reasons"], second["holder"]) == (
        "deny",
        ["fever"],
        "Wang Nan",
    )


def test_a_child_on_a_paper_pass_right_behind_a_parent_is_recorded_too(clock, tmp_path):
    # The child's paper pass is held up while the gate is open for the parent: kept, started
    # when the gate locks, and measured on the child; then one without any pass, whom the
    # guard registers at once: three records.
    rig = Rig(clock, tmp_path)
    try:
        rig.show(rig.pass_text(holder="Li Wei", household="1-101"))
        rig.emulator.person_arrives(36.5)
        rig.run(2.2)
        rig.show(rig.pass_text(holder="Li Xiaoming", household="1-101"))
        rig.emulator.person_leaves()
        rig.run(0.5)
        rig.emulator.person_arrives(36.8)
        rig.run(5)
        rig.engine.manual(
            "manual_pass",
            "guard Zhou",
            "child without a phone",
            "out",
            person={"name": "Li Xiaohong", "unit": "1-101"},
            kind="registration",
            temp_c=36.6,
        )
        rig.run(5)
        events = rig.events()
        assert [(e["decision"], e["kind"], e["holder"]) for e in events] == [
            ("pass", "passage", "Li Wei"),
            ("pass", "passage", "Li Xiaoming"),
            ("manual_pass", "registration", None),
        ]
        assert events[2]["person"]["name"] == "Li Xiaohong"
    finally:
        rig.close()


def test_the_next_person_is_not_called_while_the_gate_has_not_confirmed_it_locked(queue):
    # The relay answers the lock late: until it does, the screen keeps the pass (the gate
    # is still open), and the code of the next person, kept meanwhile, does not start.
    rig = queue
    late: list[bool] = []
    answer = rig.ports.lock_gate
    rig.ports.lock_gate = lambda: late.append(True)  # type: ignore[method-assign]
    rig.show(rig.pass_text(holder="Li Wei", household="1-101"))
    rig.emulator.person_arrives(36.5)
    rig.run(2.2)
    rig.show(rig.pass_text(holder="Wang Nan", household="1-102"))
    rig.emulator.person_leaves()
    rig.run(0.5)
    rig.emulator.person_arrives(36.6)
    rig.run(3)  # the pulse is over; the lock is commanded and not yet answered
    assert late
    assert rig.engine.state == "gate_open"
    assert rig.engine.prompt == "pass"
    states = [m for m in rig.messages if m["type"] == "state"]
    assert states[-1]["state"] == "gate_open"
    assert len(rig.decisions()) == 1
    rig.ports.lock_gate = answer  # type: ignore[method-assign]
    after = len(rig.messages)
    rig.engine.on_gate_locked()
    rig.run(6)
    new = [m["state"] for m in rig.messages[after:] if m["type"] == "state"]
    assert new[:3] == ["decided", "idle", "code_read"]
    assert _decided(rig) == [("pass", ["ok"], "L."), ("pass", ["ok"], "W.")]


def test_a_lock_that_fails_keeps_the_next_person_waiting_out_of_order(queue):
    rig = queue
    rig.show(rig.pass_text(holder="Li Wei", household="1-101"))
    rig.emulator.person_arrives(36.5)
    rig.run(2.2)
    rig.gate.unplug()
    rig.show(rig.pass_text(holder="Wang Nan", household="1-102"))
    rig.emulator.person_leaves()
    rig.run(0.5)
    rig.emulator.person_arrives(36.6)
    rig.run(4)
    assert rig.engine.gate_is_open
    assert (rig.engine.state, rig.engine.prompt) == ("decided", "out_of_order")
    assert len(rig.decisions()) == 1
    assert "idle" not in [m["state"] for m in rig.messages if m["type"] == "state"][-5:]
    rig.gate.replug()
    rig.run(8)
    assert _decided(rig)[-1] == ("pass", ["ok"], "W.")
