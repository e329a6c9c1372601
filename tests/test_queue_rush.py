"""The 8:30 rush at the gate: residents one after another, a step apart.

The real engine, policy, thermometry (the MLX90614 emulator) and event log in virtual time
(``test_engine.Rig``); each test is a short queue of people at the kiosk, and says whose
temperature and whose code each record holds.
"""

from __future__ import annotations

import pytest
from test_engine import Rig

from kiosk.devices import CodeRead


@pytest.fixture
def queue(clock, tmp_path):
    rig = Rig(clock, tmp_path)
    yield rig
    rig.close()


def _reads(rig: Rig) -> list[tuple[str, list[str], str | None, float | None]]:
    """Each decision as (decision, reasons, holder's initial, temperature)."""
    return [
        (d["decision"], d["reasons"], d["holder_initial"], d["temp_c"]) for d in rig.decisions()
    ]


# ------------------------------------------------------- whose temperature, whose code


def test_the_next_persons_code_is_not_measured_on_the_person_denied_still_at_the_screen(queue):
    # Li (a pass issued for tomorrow) is measured and denied, and stays at the thermometer
    # reading the screen; Wang, feverish, holds his phone up behind her. His code must not
    # pass on her temperature. Nor on whoever steps up after her (she may have held it): her
    # leaving ends it as no temperature, and shown again it is measured on him.
    rig = queue
    li = rig.pass_text(holder="Li Wei", household="1-101", start_days=2)
    wang = rig.pass_text(holder="Wang Nan", household="1-102")
    rig.show(li)
    rig.emulator.person_arrives(36.4)
    rig.run(3)
    assert _reads(rig)[0][:3] == ("deny", ["pass_not_yet_valid"], "L.")
    rig.show(wang)
    rig.run(3)  # Li still in view: Wang's code is not measured on her
    assert len(rig.decisions()) == 1
    rig.emulator.person_leaves()
    rig.run(1)
    assert _reads(rig)[1][:4] == ("deny", ["no_temperature"], "W.", None)
    rig.emulator.person_arrives(38.6)
    rig.run(5)
    rig.show(wang)
    rig.run(6)
    decision, reasons, initial, temp_c = _reads(rig)[2]
    assert (decision, reasons, initial) == ("deny", ["fever"], "W.")
    assert temp_c is not None and temp_c >= 37.3
    assert [e["holder"] for e in rig.events()] == ["Li Wei", "Wang Nan", "Wang Nan"]


def test_a_code_whose_holder_never_steps_up_is_not_measured_on_the_person_still_in_view(queue):
    # Nobody but Li (denied) ever stands at the thermometer: Wang's code shown behind her ends
    # as no temperature at its timeout, not as a pass on her reading.
    rig = queue
    rig.show(rig.pass_text(holder="Li Wei", start_days=2))
    rig.emulator.person_arrives(36.4)
    rig.run(3)
    rig.show(rig.pass_text(holder="Wang Nan", household="1-102"))
    rig.run(9)
    assert [r[:3] for r in _reads(rig)] == [
        ("deny", ["pass_not_yet_valid"], "L."),
        ("deny", ["no_temperature"], "W."),
    ]


def test_the_person_denied_showing_their_own_code_again_is_measured_where_they_stand(queue):
    # A resident trying again (the same pass) without stepping away is measured at once.
    rig = queue
    text = rig.pass_text(holder="Li Wei", start_days=2)
    rig.show(text)
    rig.emulator.person_arrives(36.4)
    rig.run(8)  # the result has gone; she is still there
    assert rig.engine.state == "idle"
    rig.show(text)
    rig.run(3)
    assert [r[:3] for r in _reads(rig)] == [("deny", ["pass_not_yet_valid"], "L.")] * 2
    assert _reads(rig)[1][3] is not None


def test_a_code_kept_during_the_pulse_is_not_measured_on_the_slow_walker(queue):
    # Li passes and lingers at the thermometer through the gate's pulse; Wang's code, shown
    # meanwhile, starts when the gate locks, and is not measured on her.
    rig = queue
    rig.show(rig.pass_text(holder="Li Wei"))
    rig.emulator.person_arrives(36.4)
    rig.run(2.2)
    assert rig.engine.state == "gate_open"
    wang = rig.pass_text(holder="Wang Nan", household="1-102")
    rig.show(wang)
    rig.run(3)
    assert len(rig.decisions()) == 1
    rig.emulator.person_leaves()
    rig.run(0.5)
    rig.emulator.person_arrives(38.6)
    rig.run(5)
    rig.show(wang)
    rig.run(6)
    assert [r[:3] for r in _reads(rig)] == [
        ("pass", ["ok"], "L."),
        ("deny", ["no_temperature"], "W."),
        ("deny", ["fever"], "W."),
    ]


def test_a_phone_held_up_while_the_one_ahead_is_measured_is_taken_when_their_turn_comes(queue):
    # Wang holds his phone up while Li is still being measured. The camera sends a code held
    # still once (its hold-off), so a code dropped then is never read again: it is kept and
    # starts once Li's result is over, and he is measured when he stands there.
    rig = queue
    rig.show(rig.pass_text(holder="Li Wei", household="1-101"))
    rig.emulator.person_arrives(36.4)
    rig.run(0.5)
    assert rig.engine.state in ("code_read", "measuring")
    rig.show(rig.pass_text(holder="Wang Nan", household="1-102"))
    rig.run(1.7)
    assert _reads(rig)[0][:3] == ("pass", ["ok"], "L.")  # her own code, not his
    rig.emulator.person_leaves()
    rig.run(0.5)
    rig.emulator.person_arrives(38.6)
    rig.run(8)
    assert [r[:3] for r in _reads(rig)] == [("pass", ["ok"], "L."), ("deny", ["fever"], "W.")]


# ------------------------------------------------------- two phones in one camera frame


def _frame(rig: Rig, *texts: str, direction: str = "out") -> None:
    """One camera frame holding ``texts``: the camera reader sends each, with its stamp."""
    now = rig.clock.monotonic_ns()
    for text in texts:
        rig.engine.on_code(CodeRead(text, "camera", now), direction)


def test_two_phones_in_one_frame_start_no_passage_until_one_is_shown_alone(queue):
    rig = queue
    li = rig.pass_text(holder="Li Wei", household="1-101")
    wang = rig.pass_text(holder="Wang Nan", household="1-102")
    rig.emulator.person_arrives(36.4)
    rig.run(0.5)
    _frame(rig, li, wang)
    assert (rig.engine.state, rig.engine.prompt) == ("idle", "show_pass")
    rig.run(8)
    assert rig.decisions() == []
    assert rig.events() == []
    rig.run(0.1)
    _frame(rig, wang)
    rig.run(4)
    assert [r[:3] for r in _reads(rig)] == [("pass", ["ok"], "W.")]


def test_three_phones_in_one_frame_start_nothing_either(queue):
    rig = queue
    texts = [rig.pass_text(holder=h, household=f"1-10{i}") for i, h in enumerate("ABC")]
    rig.emulator.person_arrives(36.4)
    _frame(rig, *texts)
    rig.run(8)
    assert rig.decisions() == []
    assert rig.engine.state == "idle"


def test_two_codes_kept_from_one_frame_during_the_pulse_start_nothing_later(queue):
    rig = queue
    rig.show(rig.pass_text(holder="Li Wei"))
    rig.emulator.person_arrives(36.4)
    rig.run(2.2)
    assert rig.engine.state == "gate_open"
    _frame(
        rig,
        rig.pass_text(holder="Wang Nan", household="1-102"),
        rig.pass_text(holder="Chen Jie", household="1-103"),
    )
    rig.emulator.person_leaves()
    rig.run(0.5)
    rig.emulator.person_arrives(36.6)
    rig.run(10)
    assert [r[:3] for r in _reads(rig)] == [("pass", ["ok"], "L.")]
    assert rig.engine.state == "idle"


def test_two_codes_in_one_frame_while_measuring_temperature_first_ask_for_one(clock, tmp_path):
    rig = Rig(clock, tmp_path, engine={"order": "temperature_first"})
    try:
        rig.emulator.person_arrives(36.4)
        rig.run(0.4)
        assert rig.engine.state == "measuring"
        li = rig.pass_text(holder="Li Wei", household="1-101")
        _frame(rig, li, rig.pass_text(holder="Wang Nan", household="1-102"))
        rig.run(2.5)
        assert (rig.engine.state, rig.engine.prompt) == ("awaiting_code", "show_pass_now")
        assert rig.decisions() == []
        rig.show(li)
        rig.run(1)
        assert [r[:3] for r in _reads(rig)] == [("pass", ["ok"], "L.")]
    finally:
        rig.close()


def test_a_frames_second_code_after_the_first_was_decided_starts_no_passage_later(clock, tmp_path):
    # Temperature first, the temperature taken: the frame's first code is decided at once
    # (docs/engine.md: that one stands); the second is not kept for whoever steps up next.
    rig = Rig(clock, tmp_path, engine={"order": "temperature_first"})
    try:
        rig.emulator.person_arrives(36.4)
        rig.run(3)
        assert rig.engine.state == "awaiting_code"
        _frame(
            rig,
            rig.pass_text(holder="Li Wei", household="1-101"),
            rig.pass_text(holder="Wang Nan", household="1-102"),
        )
        rig.emulator.person_leaves()
        rig.run(1)
        rig.emulator.person_arrives(36.8)
        rig.run(10)
        assert [r[:3] for r in _reads(rig)] == [("pass", ["ok"], "L.")]
    finally:
        rig.close()


def test_a_phone_held_up_behind_a_long_measurement_is_still_taken_when_its_turn_comes(
    clock, tmp_path
):
    # Li shows her code and never gets her wrist to the thermometer (a site measuring for up
    # to 8 s); Wang's phone, held up behind her from the start, waits through her measurement
    # and her result. It is kept for his turn, not dropped as a code whose holder has gone.
    rig = Rig(clock, tmp_path, thermometer={"thermometry": {"measure_timeout_s": 8.0}})
    try:
        rig.show(rig.pass_text(holder="Li Wei", household="1-101"))
        rig.run(0.5)
        rig.show(rig.pass_text(holder="Wang Nan", household="1-102"))
        rig.run(8.5)
        assert [r[:3] for r in _reads(rig)] == [("deny", ["no_temperature"], "L.")]
        rig.run(3.9)  # her result on the screen
        rig.emulator.person_arrives(36.6)
        rig.run(4)
        assert [r[:3] for r in _reads(rig)] == [
            ("deny", ["no_temperature"], "L."),
            ("pass", ["ok"], "W."),
        ]
    finally:
        rig.close()


def test_two_scans_a_serial_scanner_sent_in_one_chunk_are_two_people_not_one_frame(clock, tmp_path):
    # A scanner's lines read together share the chunk's stamp: each was its own scan, so the
    # second is kept for its turn, as any code shown while the first is measured.
    rig = Rig(clock, tmp_path, readers={"sources": [{"type": "serial", "name": "scanner"}]})
    try:
        now = rig.clock.monotonic_ns()
        for holder, household in (("Li Wei", "1-101"), ("Wang Nan", "1-102")):
            text = rig.pass_text(holder=holder, household=household)
            rig.engine.on_code(CodeRead(text, "scanner", now), "out")
        rig.emulator.person_arrives(36.4)
        rig.run(2.2)
        rig.emulator.person_leaves()  # through the gate
        rig.run(2)
        rig.emulator.person_arrives(36.8)
        rig.run(4)
        assert [r[:3] for r in _reads(rig)] == [("pass", ["ok"], "L."), ("pass", ["ok"], "W.")]
    finally:
        rig.close()
