"""The engine's state machine, in virtual time, on the real policy, thermometry and event log."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from checkpoint.replay import DirectPorts, StoreSwitch
from drivers.gate import FakeGate
from drivers.mlx90614_emulator import Mlx90614Emulator
from drivers.thermometer import FakeMlx90614
from kiosk import lists as lists_mod
from kiosk.config import parse_config
from kiosk.crossing import Crossing, Outcome
from kiosk.devices import CodeRead
from kiosk.engine import PROMPTS, Engine, FeverRefused, TemperatureImplausible
from kiosk.history import PassageHistory
from kiosk.passes import TrustList, issue_pass
from kiosk.runner import sample_thermometer
from kiosk.store import EventLog, StoreFault


class Rig:
    """The engine wired to fake devices and a real event log; time moves only in ``run``."""

    def __init__(self, clock, tmp_path, **overrides) -> None:
        self.clock = clock
        self.config = parse_config(overrides)
        self.key = Ed25519PrivateKey.generate()
        self.trust = TrustList([("demo", self.key.public_key())])
        self.log = EventLog(
            tmp_path / "events.db", "gate-1", clock, "NORMAL", [lists_mod.MIGRATIONS], boot_id="t"
        ).open()
        self.store = StoreSwitch(self.log)
        self.lists = lists_mod.ListStore(self.log, clock)
        self.lists.load()
        self.history = PassageHistory()
        self.gate = FakeGate(clock)
        self.emulator = Mlx90614Emulator(clock, hang_max_s=0.01)
        self.thermometer = FakeMlx90614(self.emulator, clock, sleep=clock.advance)
        self.messages: list[dict] = []
        self.calls: list[tuple[str, object]] = []
        self.ports = DirectPorts(
            self.store,
            self.gate,
            on_message=self.messages.append,
            on_gate=lambda open_: self.calls.append(("gate", open_)),
            on_commit=lambda event: self.calls.append(("commit", event.seq)),
        )
        self.engine = Engine(
            self.config, clock, self.ports, trust=self.trust, lists=self.lists, history=self.history
        )
        self.ports.engine = self.engine

    def close(self) -> None:
        self.log.close()

    def pass_text(self, household="A-101", holder="Li Wei", days=30.0, start_days=0.0) -> str:
        now = self.clock.now() + timedelta(days=start_days)
        return issue_pass(self.key, household, holder, days=days, now=now)[0]

    def show(self, text: str, direction: str | None = "out") -> None:
        self.engine.on_code(CodeRead(text, "camera", self.clock.monotonic_ns()), direction)

    def resident_comes(self, seconds: float) -> None:
        """A resident shows a valid pass and steps up to the thermometer at 36.6 degC; the
        engine runs for ``seconds``."""
        self.show(self.pass_text())
        self.emulator.person_arrives(36.6)
        self.run(seconds)

    def run(self, seconds: float) -> None:
        """Advance virtual time, sampling the thermometer as the runner would, ticking."""
        dt = 1.0 / self.config.thermometer.thermometry.sample_hz
        end = self.clock.monotonic_ns() + int(seconds * 1e9)
        next_probe = 0
        while self.clock.monotonic_ns() < end:
            now = self.clock.monotonic_ns()
            if self.engine.wants_readings or now >= next_probe:
                next_probe = now + int(self.config.engine.idle_probe_s * 1e9)
                sample_thermometer(self.engine, self.thermometer, self.clock)
            self.engine.tick()
            self.clock.advance(dt)

    def decisions(self) -> list[dict]:
        return [m for m in self.messages if m["type"] == "decision"]

    def alarms(self) -> list[tuple[str, str]]:
        return [(m["alarm"], m["state"]) for m in self.messages if m["type"] == "alarm"]

    def states(self) -> list[str]:
        out: list[str] = []
        for m in self.messages:
            if m["type"] == "state" and (not out or out[-1] != m["state"]):
                out.append(m["state"])
        return out

    def events(self) -> list[dict]:
        return self.log.events(0, 1000)


@pytest.fixture
def rig(clock, tmp_path):
    r = Rig(clock, tmp_path)
    yield r
    r.close()


@pytest.fixture
def make_rig(clock, tmp_path):
    made: list[Rig] = []

    def make(**overrides) -> Rig:
        r = Rig(clock, tmp_path / f"r{len(made)}", **overrides)
        made.append(r)
        return r

    for i in range(4):
        (tmp_path / f"r{i}").mkdir()
    yield make
    for r in made:
        r.close()


def test_code_then_normal_temperature_passes_and_pulses_the_gate(rig):
    rig.resident_comes(8)
    [decision] = rig.decisions()
    assert decision["decision"] == "pass"
    assert decision["reasons"] == ["ok"]
    assert decision["committed"] is True
    assert [c.open_ for c in rig.gate.commands] == [True, False]
    opened, closed = rig.gate.commands
    assert closed.mono_ns - opened.mono_ns == pytest.approx(3e9, abs=0.15e9)
    assert rig.states() == [
        "code_read",
        "measuring",
        "deciding",
        "gate_open",
        "decided",
        "idle",
    ]
    [event] = rig.events()
    assert event["decision"] == "pass"
    assert event["temp_c"] == pytest.approx(decision["temp_c"])


def test_the_gate_open_state_says_when_the_gate_locks_again(rig):
    # The screen counts the pulse down from what is left of it: a page loaded or reconnected
    # mid-pulse started from the whole pulse again.
    rig.resident_comes(2.2)
    opened = [m for m in rig.messages if m["type"] == "state"][-1]
    assert opened["state"] == "gate_open"
    [command] = rig.gate.commands
    pulse_ns = rig.config.gate.pulse_ms * 1_000_000
    assert opened["gate_closes_at_ns"] == pytest.approx(command.mono_ns + pulse_ns, abs=0.15e9)
    rig.run(4)
    locked = [m for m in rig.messages if m["type"] == "state" and m["state"] == "decided"][-1]
    assert "gate_closes_at_ns" not in locked


def test_event_is_committed_before_the_relay_fires(rig):
    rig.resident_comes(3)
    assert rig.calls[:2] == [("commit", 1), ("gate", True)]


def test_latency_runs_from_the_code_to_the_decision(rig):
    rig.show(rig.pass_text())
    rig.run(1.0)  # nobody at the thermometer yet
    rig.emulator.person_arrives(36.6)
    rig.run(3)
    [decision] = rig.decisions()
    assert decision["latency_ms"] > 1000


def test_every_state_has_a_prompt_for_the_screen(rig):
    rig.resident_comes(8)
    states = [m for m in rig.messages if m["type"] == "state"]
    assert states
    for m in states:
        assert m["prompt"] in PROMPTS
        assert m["text"] == PROMPTS[m["prompt"]]
    assert states[-1]["state"] == "idle"
    assert states[-1]["prompt"] == "show_pass"


def test_fever_is_measured_twice_then_denied_with_an_alarm(rig):
    rig.show(rig.pass_text())
    rig.emulator.person_arrives(38.6)
    rig.run(6)
    [decision] = rig.decisions()
    assert decision["decision"] == "deny"
    assert decision["reasons"] == ["fever"]
    assert decision["needs_guard"] is True
    assert ("fever", "raised") in rig.alarms()
    prompts = [m["prompt"] for m in rig.messages if m["type"] == "state"]
    assert prompts.count("measure_again") == 1
    assert rig.gate.commands == []


def _until_measured_again(rig: Rig) -> None:
    """Run until the kiosk asks for the fever re-measure (at most 12.5 s)."""
    for _ in range(100):
        if rig.engine.prompt == "measure_again":
            return
        rig.run(0.125)
    pytest.fail("no re-measure")


def test_fever_on_first_reading_but_normal_on_the_second_passes(rig):
    # The forehead read a fever (37.6) and, as it is measured again, cools by 0.4 degC to a
    # normal 37.2: 0.3 degC on the sensor, within what one forehead's plateaus differ by.
    rig.show(rig.pass_text())
    rig.emulator.person_arrives(37.6)
    _until_measured_again(rig)
    rig.emulator.person_arrives(37.2)
    rig.run(4)
    [decision] = rig.decisions()
    assert (decision["decision"], decision["reasons"]) == ("pass", ["ok"])
    assert decision["temp_c"] < 37.3


def test_a_fever_re_measured_twice_on_a_doubted_view_stands_with_its_alarm(rig):
    """The re-measure of a fever (37.6) is doubted twice (the head sways: ``fell``), each time
    with a normal body estimate less than ``REMEASURE_AGREES_C`` (object) below the fever: an
    implausible verdict is no reading, and clears nothing. The fever stands: the guard gets
    the fever alarm, the person is not told their reading was implausible."""
    from drivers.mlx90614_emulator import Visit

    rig.show(rig.pass_text())
    rig.emulator.person_arrives(37.6)
    _until_measured_again(rig)
    rig.emulator.person_arrives(37.4, Visit(wobble=0.05))
    rig.run(14)
    [decision] = rig.decisions()
    assert (decision["decision"], decision["reasons"]) == ("deny", ["fever"])
    assert decision["needs_guard"] is True
    assert ("fever", "raised") in rig.alarms()
    prompts = [m["prompt"] for m in rig.messages if m["type"] == "state"]
    assert prompts.count("measure_again") == 2  # the fever's, then the doubted view's
    assert "see_guard" in prompts


def _fever_then_swapped(make_rig, order: str, code_at: str, normal_c: float) -> Rig:
    """A, feverish (38.5), is measured to a fever; as the kiosk asks to measure again, B (no
    warmer: ``normal_c``) takes A's place with no gap the reading could show (B's forehead in
    view as A's leaves it) and stays. A's code is shown ``code_at``: ``"first"`` (before A
    steps up), ``"measuring"`` (while A is first measured, temperature first),
    ``"remeasure"`` (as the re-measure begins) or ``"after"`` (once the kiosk asks for it)."""
    rig = make_rig(engine={"order": order})
    code = rig.pass_text(holder="Feverish A")
    if code_at == "first":
        rig.show(code)
    rig.emulator.person_arrives(38.5)
    if code_at == "measuring":
        rig.run(0.5)
        rig.show(code)
    _until_measured_again(rig)
    if code_at == "remeasure":
        rig.show(code)
    rig.emulator.person_arrives(normal_c)  # B, as A steps away
    rig.run(4)
    if code_at == "after":
        assert rig.engine.prompt == "show_pass_now"
        rig.show(code)
        rig.run(1)
    return rig


@pytest.mark.parametrize("normal_c", [36.4, 37.0])
@pytest.mark.parametrize(
    ("order", "code_at"),
    [
        ("code_first", "first"),
        ("temperature_first", "first"),
        ("temperature_first", "measuring"),
        ("temperature_first", "remeasure"),
        ("temperature_first", "after"),
    ],
)
def test_a_fever_re_measured_on_someone_no_warmer_swapped_in_with_no_gap_is_not_passed(
    make_rig, order, code_at, normal_c
):
    # B's forehead took the place of A's as the re-measure began: the reading fell from A's
    # 38.5 to B's, short of the 2 degC fall that says A left. B's normal reading, well below
    # the fever, used to pass A's code. It is no evidence that A's fever was wrong: the fever
    # stands, the code is denied on it and the guard is called to measure by hand.
    rig = _fever_then_swapped(make_rig, order, code_at, normal_c)
    [event] = rig.events()
    assert (event["decision"], event["reasons"]) == ("deny", ["fever"])
    assert event["holder"] == "Feverish A"
    assert event["temp_c"] >= 38.3  # A's reading, not B's
    [decision] = rig.decisions()
    assert decision["needs_guard"] is True
    assert ("fever", "raised") in rig.alarms()
    assert rig.engine.prompt == "see_guard"
    assert rig.gate.commands == []


def test_without_remeasure_on_fever_one_measurement_denies(make_rig):
    rig = make_rig(thermometer={"thermometry": {"remeasure_on_fever": False}})
    rig.show(rig.pass_text())
    rig.emulator.person_arrives(38.6)
    rig.run(4)
    assert [d["reasons"] for d in rig.decisions()] == [["fever"]]
    assert not any(m.get("prompt") == "measure_again" for m in rig.messages)


@pytest.mark.parametrize("fell_c", [0.0, 0.5])
def test_a_body_exactly_at_the_fever_threshold_is_a_fever_measured_again(rig, monkeypatch, fell_c):
    # docs/policy.md: a body temperature >= fever_threshold_c (37.3) is a fever. The engine's
    # one re-measure before a fever deny must take the same side of the line as the policy:
    # each measurement (the real one, of a 37.5 degC forehead) is made to read exactly 37.3,
    # its object reading as it was or ``fell_c`` below it (far below the fever the same
    # measurement read: a normal reading that far below would not be that forehead's, but
    # one at the threshold is a fever, not a normal one).
    from kiosk import thermometry

    threshold = rig.config.thermometer.thermometry.fever_threshold_c
    real_add = thermometry.Measurement.add

    def at_threshold(self, reading):
        t = real_add(self, reading)
        if t is None or not t.ok:
            return t
        return dataclasses.replace(t, body_c=threshold, object_c=t.object_c - fell_c)

    monkeypatch.setattr(thermometry.Measurement, "add", at_threshold)
    rig.show(rig.pass_text())
    rig.emulator.person_arrives(37.5)
    rig.run(8)
    [event] = rig.events()
    assert (event["decision"], event["reasons"], event["temp_c"]) == ("deny", ["fever"], 37.3)
    prompts = [m["prompt"] for m in rig.messages if m["type"] == "state"]
    assert prompts.count("measure_again") == 1  # measured again first, as any fever
    assert ("fever", "raised") in rig.alarms()


def test_implausible_reading_is_remeasured_once_then_denied(rig):
    rig.show(rig.pass_text())
    rig.emulator.person_arrives(29.0)
    rig.run(6)
    [decision] = rig.decisions()
    assert decision["decision"] == "deny"
    assert decision["reasons"] == ["temp_implausible"]
    prompts = [m["prompt"] for m in rig.messages if m["type"] == "state"]
    assert prompts.count("measure_again") == 1


def test_nobody_at_the_thermometer_times_out_as_no_temperature(rig):
    rig.show(rig.pass_text())
    rig.run(5.9)
    assert rig.decisions() == []
    rig.run(1)
    [decision] = rig.decisions()
    assert decision["reasons"] == ["no_temperature"]


def test_thermometer_fault_denies_for_the_guard_and_recovers_by_itself(rig):
    rig.emulator.inject("nack")
    rig.resident_comes(2)
    [decision] = rig.decisions()
    assert decision["decision"] == "deny"
    assert decision["reasons"] == ["sensor_fault"]
    assert decision["needs_guard"] is True
    assert ("sensor_fault", "raised") in rig.alarms()
    assert "thermometer" in rig.engine.degraded
    assert rig.engine.prompt == "see_guard"
    rig.run(3)
    assert rig.engine.prompt == "out_of_order"
    rig.emulator.clear_faults()
    rig.run(40)  # the driver reopens the bus after its back-off
    assert rig.engine.degraded == ()
    assert ("sensor_fault", "cleared") in rig.alarms()
    assert rig.engine.prompt == "show_pass"
    rig.show(rig.pass_text(holder="Zhao Lei"))
    rig.emulator.person_arrives(36.6)
    rig.run(4)
    assert rig.decisions()[-1]["decision"] == "pass"


def test_temperature_first_starts_on_presence_and_waits_for_the_code(make_rig):
    rig = make_rig(engine={"order": "temperature_first"})
    assert rig.engine.prompt == "step_up"
    rig.emulator.person_arrives(36.6)
    rig.run(3)
    assert rig.engine.state == "awaiting_code"
    assert rig.engine.prompt == "show_pass_now"
    rig.show(rig.pass_text())
    rig.run(0.2)
    [decision] = rig.decisions()
    assert decision["decision"] == "pass"


def test_a_person_arriving_once_the_stop_began_starts_no_passage(make_rig):
    """A reading reaching the engine once the stop began (``begin_stop``: the thermometer's
    last read as its loop is cancelled) starts nothing at a gate locked for good."""
    rig = make_rig(engine={"order": "temperature_first"})
    rig.engine.begin_stop()
    rig.emulator.person_arrives(36.6)
    rig.run(3)
    assert (rig.engine.state, rig.engine.passage) == ("idle", None)
    assert rig.decisions() == []


def test_temperature_first_without_a_code_denies_after_the_code_timeout(make_rig):
    rig = make_rig(engine={"order": "temperature_first", "code_timeout_s": 5})
    rig.emulator.person_arrives(36.6)
    rig.run(3)
    assert rig.decisions() == []
    rig.run(5)
    [decision] = rig.decisions()
    assert decision["decision"] == "deny"
    assert decision["reasons"] == ["no_pass"]


def _measured_then_left(
    make_rig, gap_s: float, shows_after_s: float = 0.0, sensor_fails_for: int = 0
) -> Rig:
    """Temperature first: A (normal) is measured and walks off without a code; ``gap_s`` later
    B (feverish) steps up and shows a code ``shows_after_s`` after that; eight seconds pass."""
    rig = make_rig(engine={"order": "temperature_first"})
    rig.emulator.person_arrives(36.4)
    rig.run(3)
    assert rig.engine.state == "awaiting_code"
    rig.emulator.person_leaves()
    if sensor_fails_for:
        rig.emulator.inject("nack", sensor_fails_for)
    rig.run(gap_s)
    rig.emulator.person_arrives(38.8)
    rig.run(shows_after_s)
    rig.show(rig.pass_text(holder="Feverish B"))
    rig.run(8)
    return rig


def test_temperature_first_the_next_person_never_passes_on_the_temperature_of_one_who_left(
    make_rig,
):
    # A is measured (normal) and walks away without a code; B, feverish, steps up a second
    # later and shows a code at once. B used to pass on A's temperature (the code timeout is
    # 10 s); now A's passage ends when A leaves and B is measured afresh.
    rig = _measured_then_left(make_rig, gap_s=1.0, shows_after_s=0.3)
    left, b = rig.events()
    assert (left["decision"], left["reasons"], left["holder"]) == ("deny", ["no_pass"], None)
    assert left["temp_c"] < 37.0
    assert (b["decision"], b["reasons"], b["holder"]) == ("deny", ["fever"], "Feverish B")
    assert b["temp_c"] >= 37.3


def test_temperature_first_a_swap_faster_than_the_air_reading_returns_is_still_caught(make_rig):
    # B steps up 0.8 s after A left and shows a code at once: A's reading has not yet fallen
    # to the air's, but it fell far below A's, and that already says A left.
    rig = _measured_then_left(make_rig, gap_s=0.8)
    assert [(e["decision"], e["reasons"], e["holder"]) for e in rig.events()] == [
        ("deny", ["no_pass"], None),
        ("deny", ["fever"], "Feverish B"),
    ]


def test_temperature_first_a_sensor_fault_while_awaiting_the_code_cannot_vouch_for_the_person(
    make_rig,
):
    # A leaves while the thermometer fails (ten reads); B, feverish, steps up and shows a code
    # as soon as it is back. Found by the engine's state-machine property test.
    rig = _measured_then_left(make_rig, gap_s=1.0, sensor_fails_for=10)
    assert [(e["decision"], e["holder"]) for e in rig.events()] == [
        ("deny", None),
        ("deny", "Feverish B"),
    ]


def _measured_then_swapped(make_rig, shows_after_s: float) -> tuple[list[str], dict]:
    """Temperature first: A (normal) is measured; B (feverish) takes A's place with no gap the
    reading could show (B's forehead in view as A's leaves it) and shows a code
    ``shows_after_s`` later. The states before A's place was taken and before the code, and
    the one event recorded."""
    rig = make_rig(engine={"order": "temperature_first"})
    rig.emulator.person_arrives(36.4)
    rig.run(3)
    states = [rig.engine.state]
    rig.emulator.person_arrives(38.8)
    rig.run(shows_after_s)
    states.append(rig.engine.state)
    rig.show(rig.pass_text(holder="Feverish B"))
    rig.run(8)
    [b] = rig.events()
    return states, b


def test_temperature_first_a_warmer_person_swapped_in_with_no_gap_is_measured_afresh(make_rig):
    # B shows the code two seconds after the swap. The reading rising well above A's
    # temperature says it is not A's any more: B is measured for the code.
    states, b = _measured_then_swapped(make_rig, shows_after_s=2)
    assert states[0] == "awaiting_code"
    assert (b["decision"], b["reasons"], b["holder"]) == ("deny", ["fever"], "Feverish B")
    assert b["temp_c"] >= 37.3


def test_temperature_first_a_code_shown_while_the_reading_rises_past_the_temperature_is_measured(
    make_rig,
):
    # As above, but B shows the code half a second after taking A's place: the reading is
    # already well above A's temperature, though not yet for ``left_after_s``.
    states, b = _measured_then_swapped(make_rig, shows_after_s=0.5)
    assert states[1] == "awaiting_code"
    assert (b["decision"], b["reasons"], b["holder"]) == ("deny", ["fever"], "Feverish B")


@pytest.mark.parametrize("order", ["code_first", "temperature_first"])
def test_a_fever_whose_person_walks_off_from_the_re_measure_is_denied_as_the_fever(make_rig, order):
    # A shows the code, reads a fever (38.5) and walks away as the kiosk asks to measure
    # again. The re-measure has no reading: that clears nothing, so A's code is denied on the
    # fever, with the fever alarm (the guard looks for A), not as "no temperature".
    rig = make_rig(engine={"order": order})
    rig.show(rig.pass_text(holder="Feverish A"))
    rig.emulator.person_arrives(38.5)
    _until_measured_again(rig)
    rig.emulator.person_leaves()
    rig.run(6)
    [event] = rig.events()
    assert (event["decision"], event["reasons"], event["holder"]) == (
        "deny",
        ["fever"],
        "Feverish A",
    )
    assert event["temp_c"] >= 38.3
    assert ("fever", "raised") in rig.alarms()
    assert rig.gate.commands == []


def _a_left_and_b_showed(rig: Rig, shows_after_s: float) -> dict:
    """A walks away; a second later B (healthy) steps up and shows B's own code
    ``shows_after_s`` later. The one event recorded, six seconds after B stepped up."""
    rig.emulator.person_leaves()
    rig.run(1.0)
    rig.emulator.person_arrives(36.6)
    rig.run(shows_after_s)
    rig.show(rig.pass_text(holder="B"))
    rig.run(6 - shows_after_s)
    [event] = rig.events()
    return event


@pytest.mark.parametrize("gap", [True, False], ids=["walks_off", "falls_2C"])
def test_temperature_first_a_fever_whose_person_left_before_any_code_leaves_the_next_free(
    make_rig, gap
):
    # A reads a fever (39.5) and goes as the kiosk asks to measure again, before any code:
    # walking off (B steps up a second later), or with B (36.4) in A's place at once, the
    # reading falling over 2 degC. Either way A left: the passage is nobody's yet, B is
    # measured for it and passes on B's own code and reading, with no record of A's
    # temperature pinned on B (A's fever does not stand over B).
    rig = make_rig(engine={"order": "temperature_first"})
    rig.emulator.person_arrives(39.5)
    _until_measured_again(rig)
    if gap:
        event = _a_left_and_b_showed(rig, shows_after_s=4)
    else:
        rig.emulator.person_arrives(36.4)
        rig.run(4)
        rig.show(rig.pass_text(holder="B"))
        rig.run(1)
        [event] = rig.events()
    assert (event["decision"], event["reasons"], event["holder"]) == ("pass", ["ok"], "B")


def test_temperature_first_a_steady_person_awaiting_the_code_is_not_measured_again(make_rig):
    # The same person staying in view (noise, sway) keeps the temperature taken: one pass,
    # no second measurement.
    rig = make_rig(engine={"order": "temperature_first"})
    rig.emulator.person_arrives(36.6)
    rig.run(3)
    assert rig.engine.state == "awaiting_code"
    states = []
    for _ in range(40):
        rig.run(0.125)
        states.append(rig.engine.state)
    assert set(states) == {"awaiting_code"}
    rig.show(rig.pass_text())
    rig.run(0.5)
    [event] = rig.events()
    assert (event["decision"], event["reasons"]) == ("pass", ["ok"])


def test_temperature_first_whoever_is_measured_when_the_code_comes_is_the_passages_person(
    make_rig,
):
    # A steps up and walks off mid-measurement, before any code; B steps up and shows a code
    # while still coming into view. Nobody's code was left behind: B is measured for it.
    rig = make_rig(engine={"order": "temperature_first"})
    rig.emulator.person_arrives(36.4)
    rig.run(0.5)
    event = _a_left_and_b_showed(rig, shows_after_s=0.1)
    assert (event["decision"], event["reasons"], event["holder"]) == ("pass", ["ok"], "B")


def test_code_first_the_person_who_showed_the_code_leaving_ends_the_passage(rig):
    # B, feverish, shows a code in view of the thermometer and walks off before the reading
    # settles; A, healthy, steps up a second later. A used to be measured for B's code.
    rig.emulator.person_arrives(38.8)
    rig.run(0.2)
    rig.show(rig.pass_text(holder="Feverish B"))
    rig.run(0.5)
    rig.emulator.person_leaves()
    rig.run(1.0)
    rig.emulator.person_arrives(36.4)
    rig.run(6)
    [event] = rig.events()
    assert (event["decision"], event["holder"]) == ("deny", "Feverish B")
    assert event["reasons"] == ["no_temperature"]


def test_temperature_first_a_person_back_within_left_after_s_keeps_their_temperature(make_rig):
    rig = make_rig(engine={"order": "temperature_first", "left_after_s": 3})
    rig.emulator.person_arrives(36.4)
    rig.run(3)
    rig.emulator.person_leaves()  # stepped back for the phone...
    rig.run(1.5)
    assert rig.engine.state == "awaiting_code"
    rig.emulator.person_arrives(36.4)  # ...and is back: the same passage, one event
    rig.run(0.5)
    rig.show(rig.pass_text())
    rig.run(0.5)
    [event] = rig.events()
    assert (event["decision"], event["reasons"]) == ("pass", ["ok"])


def test_all_readers_down_decides_a_measured_visitor_as_reader_fault(make_rig):
    rig = make_rig(engine={"order": "temperature_first"})
    rig.engine.on_reader_fault("camera", "camera lost: unplugged")
    assert ("reader_fault", "raised") in rig.alarms()
    assert rig.engine.prompt == "out_of_order"
    rig.emulator.person_arrives(36.6)
    rig.run(3)
    [decision] = rig.decisions()
    assert decision["reasons"] == ["reader_fault"]
    assert decision["needs_guard"] is True
    rig.engine.on_reader_ok("camera")
    assert ("reader_fault", "cleared") in rig.alarms()
    assert "reader:camera" not in rig.engine.degraded


def test_one_of_two_readers_back_says_no_cleared_while_the_other_still_fails(make_rig):
    """The camera back while the scanner is still unplugged: the engine said the readers'
    fault ``cleared``, and the desk counted the scanner's standing fault once more when it
    rebuilt its cards (as if it had failed again). Cleared only once no reader fails."""
    rig = make_rig(readers={"sources": [{"type": "camera"}, {"type": "serial"}]})
    engine = rig.engine
    engine.on_reader_fault("serial", "scanner lost")
    engine.on_reader_fault("camera", "camera lost")
    engine.on_reader_ok("camera")
    assert engine.faults["reader"] == "serial"
    assert ("reader_fault", "cleared") not in rig.alarms()
    engine.on_reader_ok("serial")
    assert rig.alarms()[-1] == ("reader_fault", "cleared")
    raised = [m for m in rig.messages if m.get("alarm") == "reader_fault" and "all_down" in m]
    assert [m["all_down"] for m in raised] == [False, True]


def test_store_fault_denies_unrecorded_and_the_record_is_written_on_recovery(rig):
    rig.store.fail()
    rig.resident_comes(3)
    [decision] = rig.decisions()
    assert decision["decision"] == "deny"
    assert "store_fault" in decision["reasons"]
    assert decision["committed"] is False
    assert rig.gate.commands == []
    assert ("store_fault", "raised") in rig.alarms()
    assert len(rig.engine.backlog) == 1
    assert rig.events() == []
    rig.store.recover()
    rig.run(2)
    [event] = rig.events()
    assert event["decision"] == "deny"
    assert "store_fault" in event["reasons"]
    assert rig.engine.backlog == type(rig.engine.backlog)()
    assert ("store_fault", "cleared") in rig.alarms()


def test_manual_pass_during_store_fault_opens_only_when_configured(make_rig):
    strict = make_rig(policy={"on_store_fault": "deny"})
    strict.store.fail()
    strict.engine.manual("manual_pass", "guard-zhou", "known resident", "in")
    strict.run(0.5)
    assert strict.gate.commands == []
    assert strict.decisions()[-1]["decision"] == "manual_deny"

    lenient = make_rig(policy={"on_store_fault": "manual"})
    lenient.store.fail()
    lenient.engine.manual("manual_pass", "guard-zhou", "known resident", "in")
    lenient.run(0.5)
    assert [c.open_ for c in lenient.gate.commands] == [True]
    assert lenient.decisions()[-1]["committed"] is False
    lenient.store.recover()
    lenient.run(2)
    [event] = lenient.events()
    assert event["decision"] == "manual_pass"
    assert event["operator"] == "guard-zhou"


def _guard_denies(rig) -> list[Crossing]:
    """A guard's manual deny, its crossing held (the list collects this and later crossings)."""
    held = _hold_crossings(rig)
    rig.engine.manual("manual_deny", "guard-zhou", "no pass", "in")
    return held


def _deadline_missed(rig) -> tuple[list[Crossing], Crossing]:
    """A guard's deny whose commit is answered as missing its deadline (still under way)."""
    held = _guard_denies(rig)
    [crossing] = held
    missed = StoreFault("store_fault", "commit not confirmed within 3000 ms")
    rig.engine.on_crossed(Outcome(crossing, store_fault=missed, pending=True))
    return held, crossing


def test_late_commit_after_a_reported_store_fault_is_not_written_twice(make_rig):
    rig = make_rig()
    _, crossing = _deadline_missed(rig)
    assert len(rig.engine.backlog) == 1
    event = rig.log.append(crossing.draft)  # ... but it did land
    rig.engine.on_late_commit(crossing, event)
    assert len(rig.engine.backlog) == 0
    assert ("store_late_commit", "raised") in rig.alarms()


def test_a_held_draft_is_not_committed_again_while_its_first_commit_may_still_land(make_rig):
    rig = make_rig()
    held, crossing = _deadline_missed(rig)
    [draft] = rig.engine.backlog  # the record, marked as not committed in time
    rig.run(5)  # retry time passes many times over: the first commit is still under way
    assert held == [crossing]
    rig.engine.on_late_commit(crossing, None)  # ... and then it failed after all
    rig.run(2)
    assert len(held) == 2 and held[1].draft is draft  # now it is retried, once
    event = rig.log.append(held[1].draft)
    rig.engine.on_crossed(Outcome(held[1], event=event))
    assert len(rig.engine.backlog) == 0
    assert [e["decision"] for e in rig.events()] == ["manual_deny"]


def test_a_failed_commit_is_retried_and_forgotten_when_it_lands(make_rig):
    rig = make_rig()
    held = _guard_denies(rig)
    full = StoreFault("store_fault", "database or disk is full")
    for _ in range(3):  # not pending: nothing more will come of these attempts
        rig.engine.on_crossed(Outcome(held[-1], store_fault=full))
        rig.run(1.1)
    [draft] = rig.engine.backlog
    assert len(held) == 4 and all(c.draft is draft for c in held[1:])
    # Not one of the failed attempts is waited for: a late answer for one is ignored.
    event = rig.log.append(held[-1].draft)
    rig.engine.on_late_commit(held[0], event)
    assert len(rig.engine.backlog) == 1
    rig.engine.on_crossed(Outcome(held[-1], event=event))
    assert len(rig.engine.backlog) == 0
    assert ("store_late_commit", "raised") not in rig.alarms()


def _hold_crossings(rig) -> list[Crossing]:
    """Keep the engine's crossings instead of carrying them out (``DirectPorts.cross`` carries
    one out when the test says so)."""
    held: list[Crossing] = []
    rig.ports.cross = held.append
    return held


def land_late(rig, crossing: Crossing):
    """The card stalls past the commit deadline for ``crossing`` (a pass): the engine is told
    the commit was not confirmed (the screen denies, the gate stays shut); then the commit
    lands after all. The event that landed."""
    from kiosk.crossing import Outcome
    from kiosk.store import StoreFault

    assert crossing.draft.decision == "pass"
    missed = StoreFault("store_fault", "commit not confirmed within 3000 ms")
    rig.engine.on_crossed(Outcome(crossing, store_fault=missed, pending=True))
    assert rig.decisions()[-1]["decision"] == "deny" and rig.gate.commands == []
    event = rig.log.append(crossing.draft)  # ... but it did land
    rig.engine.on_late_commit(crossing, event)
    return event


def _carry_out(rig, crossing: Crossing) -> None:
    del rig.ports.cross  # the DirectPorts method again
    rig.ports.cross(crossing)


def test_a_passage_crosses_once_and_is_published_only_after_its_outcome(rig):
    held = _hold_crossings(rig)
    rig.resident_comes(2)
    [crossing] = held
    assert crossing.draft.decision == "pass"
    assert (crossing.opens_gate(committed=True), crossing.opens_gate(committed=False)) == (
        True,
        False,
    )
    assert rig.engine.state == "deciding"
    assert rig.decisions() == []
    assert rig.gate.commands == []
    _carry_out(rig, crossing)
    [decision] = rig.decisions()
    assert decision["committed"] is True
    assert decision["seq"] == 1
    assert [c.open_ for c in rig.gate.commands] == [True]
    assert rig.engine.state == "gate_open"
    assert len(held) == 1


def test_a_deny_crossing_never_opens_the_gate(rig):
    held = _hold_crossings(rig)
    rig.show(rig.pass_text(days=1, start_days=-2))  # expired
    rig.emulator.person_arrives(36.6)
    rig.run(2)
    [crossing] = held
    assert crossing.draft.decision == "deny"
    assert not crossing.opens_gate(committed=True)
    assert not crossing.opens_gate(committed=False)
    _carry_out(rig, crossing)
    assert rig.decisions()[-1]["decision"] == "deny"
    assert rig.gate.commands == []


def test_only_a_guards_manual_pass_opens_unrecorded_and_only_if_configured(make_rig):
    opened = {}
    for on_fault in ("manual", "deny"):
        rig = make_rig(policy={"on_store_fault": on_fault})
        held = _hold_crossings(rig)
        rig.engine.manual("manual_pass", "guard-zhou", "known resident", "in")
        [crossing] = held
        opened[on_fault] = (crossing.opens_gate(True), crossing.opens_gate(False))
    assert opened == {"manual": (True, True), "deny": (True, False)}


def test_a_gate_commanded_open_for_a_deny_is_locked_at_the_next_tick(rig):
    held = _hold_crossings(rig)
    rig.engine.manual("manual_deny", "guard-zhou", "no pass", "in")
    [crossing] = held
    event = rig.log.append(crossing.draft)
    rig.gate.set_open(True)  # a port that got it wrong
    rig.engine.on_crossed(Outcome(crossing, event=event, gate_commanded=True))
    assert rig.decisions()[-1]["decision"] == "manual_deny"
    rig.engine.tick()
    assert rig.gate.is_open is False
    assert not rig.engine.gate_is_open


def test_no_lock_is_commanded_while_a_crossing_may_be_opening_the_gate(rig):
    """A lock sent while a crossing opens the gate would land after the opening and cut the
    next person's pulse short; the outcome sets the new pulse's end instead."""
    rig.resident_comes(2)
    assert rig.engine.state == "gate_open"
    held = _hold_crossings(rig)
    rig.engine.manual("manual_pass", "guard-zhou", "her child too", "in")
    [crossing] = held
    pulse_s = rig.config.gate.pulse_ms / 1000
    rig.clock.advance(pulse_s + 1)
    rig.engine.tick()
    assert [c.open_ for c in rig.gate.commands] == [True]  # no lock while it is in flight
    _carry_out(rig, crossing)
    assert [c.open_ for c in rig.gate.commands] == [True, True]
    rig.clock.advance(pulse_s - 0.5)
    rig.engine.tick()
    assert [c.open_ for c in rig.gate.commands] == [True, True]
    rig.clock.advance(1)
    rig.engine.tick()
    assert [c.open_ for c in rig.gate.commands] == [True, True, False]


def test_unplugged_gate_raises_an_alarm_and_the_next_code_is_still_decided(rig):
    rig.gate.unplug()
    rig.resident_comes(3)
    assert rig.decisions()[0]["decision"] == "pass"
    assert ("gate_fault", "raised") in rig.alarms()
    assert "gate" in rig.engine.degraded
    rig.emulator.person_leaves()  # the guard lets them through
    rig.run(5)
    rig.show(rig.pass_text(holder="Sun Li"))
    rig.emulator.person_arrives(36.4)
    rig.run(3)
    assert len(rig.decisions()) == 2
    rig.gate.replug()
    rig.run(5)
    assert "gate" not in rig.engine.degraded
    assert rig.gate.commands[-1].open_ is False  # the recovery probe locks it


def test_a_gate_that_fails_to_lock_is_retried_until_it_locks(rig):
    rig.resident_comes(2.5)
    assert rig.gate.is_open
    rig.gate.unplug()
    rig.run(3)
    assert ("gate_not_locked", "raised") in rig.alarms()
    rig.gate.replug()
    rig.run(2)
    assert rig.gate.is_open is False
    assert not rig.engine.gate_is_open


def test_manual_override_after_a_deny_carries_the_passage_and_opens(rig):
    rig.show(rig.pass_text(household="C-303", holder="Wang Fang"))
    rig.emulator.person_arrives(38.6)
    rig.run(4)
    assert rig.decisions()[-1]["decision"] == "deny"
    rig.engine.manual("manual_pass", "guard-zhou", "escorted home to isolate", "in")
    override = rig.decisions()[-1]
    assert override["decision"] == "manual_pass"
    assert override["reasons"] == ["guard_override"]
    assert override["operator"] == "guard-zhou"
    assert override["flags"] == ["role:resident", "overrides:1"]  # the pass's role kept
    assert rig.gate.commands[-1].open_ is True
    event = rig.events()[-1]
    assert event["household"] == "C-303"
    assert event["temp_c"] is not None
    assert event["person"]["note"] == "escorted home to isolate"


def test_a_guard_record_carries_the_flags_the_guard_was_warned_of_and_no_others(rig):
    rig.show(rig.pass_text(household="C-303"))
    rig.emulator.person_arrives(38.6)
    rig.run(4)
    rig.engine.manual("manual_pass", "guard-zhou", "to hospital", "out", flags=["quarantine"])
    assert rig.decisions()[-1]["flags"] == ["quarantine", "role:resident", "overrides:1"]
    for bad in (["overrides:7"], ["passback"], "quarantine"):
        with pytest.raises(ValueError, match="flags: only observation, quarantine"):
            rig.engine.manual("manual_pass", "guard-zhou", "x", "out", flags=bad)


def test_manual_registration_of_a_vehicle_is_an_event_with_its_details(rig):
    rig.engine.manual(
        "manual_pass",
        "guard-zhou",
        "delivery van",
        "in",
        person={"plate": "沪A12345", "driver": "Chen", "occupants": 2},
        kind="vehicle",
    )
    [event] = rig.events()
    assert event["kind"] == "vehicle"
    assert event["person"]["plate"] == "沪A12345"
    assert event["decision"] == "manual_pass"


def test_a_person_value_given_as_a_number_is_stored_as_text(rig):
    """A replay scenario's ``phone = 13900139000`` (TOML) or an API body's number: the
    person's text fields (a phone, a unit, a name) are kept as text, one rule at the engine,
    not as a JSON number; a value that is no text nor a whole number is refused."""
    rig.engine.manual(
        "manual_pass",
        "guard-zhou",
        "visiting mother",
        "in",
        person={"name": "Wang Fang", "phone": 13900139000, "unit": 101, "occupants": 2},
        kind="registration",
    )
    [event] = rig.events()
    person = {k: event["person"][k] for k in ("name", "phone", "unit", "occupants")}
    assert person == {"name": "Wang Fang", "phone": "13900139000", "unit": "101", "occupants": 2}
    for bad in (True, 1.5, ["139"], {"n": 1}):
        with pytest.raises(ValueError, match="person.phone: text"):
            rig.engine.manual(
                "manual_pass", "guard-zhou", "x", "in", person={"phone": bad}, kind="registration"
            )
    assert len(rig.events()) == 1


def register(rig, temp_c, decision="manual_pass"):
    rig.engine.manual(
        decision,
        "guard-zhou",
        "visiting mother",
        "in",
        person={"name": "Wang Fang", "phone": "13800138000"},
        kind="registration",
        temp_c=temp_c,
    )


def test_registration_records_the_hand_measured_temperature_as_the_events_temp_c(rig):
    register(rig, 36.6)
    [event] = rig.events()
    assert (event["kind"], event["decision"]) == ("registration", "manual_pass")
    assert event["temp_c"] == 36.6
    # A hand reading has no sensor pair: calibration must never pair a clinical reading with it.
    assert event["temp_object_c"] is None and event["temp_ambient_c"] is None
    assert "temp_c" not in event["person"] and "hand_temp_c" not in event["person"]
    assert rig.decisions()[-1]["temp_c"] == 36.6
    assert rig.gate.commands[-1].open_ is True


@pytest.mark.parametrize("temp_c", [37.3, 38.2])  # the threshold itself is a fever
def test_registration_as_a_pass_with_a_hand_measured_fever_is_refused(rig, temp_c):
    with pytest.raises(FeverRefused) as refused:
        register(rig, temp_c)
    assert refused.value.temp_c == temp_c
    assert refused.value.threshold_c == rig.config.thermometer.thermometry.fever_threshold_c
    assert isinstance(refused.value, ValueError)
    assert rig.events() == [] and rig.gate.commands == []
    assert rig.engine.state == "idle"


def test_a_person_without_a_pass_with_a_hand_measured_fever_is_refused_as_a_pass(rig):
    """Admitted on the guard's word alone, as one registered is: the engine's own rule, so
    every face that lets a stranger through by hand gets it (not only the console's form)."""
    with pytest.raises(FeverRefused):
        rig.engine.manual(
            "manual_pass", "guard-zhou", "no phone", "in", temp_c=38.0, subject="none"
        )
    assert rig.events() == [] and rig.gate.commands == []
    rig.engine.manual("manual_deny", "guard-zhou", "no phone", "in", temp_c=38.0, subject="none")
    assert [(e["decision"], e["temp_c"]) for e in rig.events()] == [("manual_deny", 38.0)]


def test_registration_of_a_fever_as_a_deny_is_recorded_with_its_temperature(rig):
    register(rig, 38.2, decision="manual_deny")
    [event] = rig.events()
    assert (event["decision"], event["temp_c"]) == ("manual_deny", 38.2)
    assert rig.gate.commands == []


def test_guard_override_with_a_hand_measured_fever_is_recorded_not_refused(rig):
    rig.show(rig.pass_text(household="C-303", holder="Wang Fang"))
    rig.emulator.person_arrives(38.6)
    rig.run(4)
    assert rig.decisions()[-1]["decision"] == "deny"
    rig.engine.manual("manual_pass", "guard-zhou", "escorted home to isolate", "in", temp_c=38.4)
    override = rig.events()[-1]
    assert (override["decision"], override["household"]) == ("manual_pass", "C-303")
    assert override["temp_c"] == 38.4  # the guard's reading replaces the kiosk's estimate
    assert override["temp_object_c"] is None and override["temp_ambient_c"] is None


@pytest.mark.parametrize("temp_c", [33.9, 43.1, float("nan"), float("inf"), "36.6", True])
def test_hand_temperature_outside_the_plausible_body_range_is_refused(rig, temp_c):
    with pytest.raises(TemperatureImplausible) as bad:
        register(rig, temp_c, decision="manual_deny")
    assert (bad.value.low_c, bad.value.high_c) == (34.0, 43.0)
    assert rig.events() == [] and rig.gate.commands == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decision": "pass"}, "decision"),
        ({"operator": " "}, "operator"),
        ({"reason": ""}, "reason"),
        ({"direction": "sideways"}, "direction"),
        ({"kind": "registration"}, "registration"),
    ],
)
def test_bad_manual_input_is_refused_and_changes_nothing(rig, kwargs, message):
    args = {
        "decision": "manual_pass",
        "operator": "guard-zhou",
        "reason": "known",
        "direction": "in",
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        rig.engine.manual(**args)
    assert rig.events() == []
    assert rig.gate.commands == []


def test_manual_during_a_measurement_abandons_it_and_is_recorded(rig):
    rig.show(rig.pass_text())
    rig.run(0.5)
    assert rig.engine.state == "code_read"
    rig.engine.manual("manual_deny", "guard-zhou", "turned back", "out")
    assert [e["decision"] for e in rig.events()] == ["manual_deny"]
    rig.run(6)
    assert len(rig.decisions()) == 1


def test_same_code_still_held_up_is_not_a_second_passage(rig):
    text = rig.pass_text()
    rig.show(text)
    rig.emulator.person_arrives(36.6)
    rig.run(2.5)
    rig.show(text)  # the phone is still in front of the camera
    rig.run(6)
    assert len(rig.decisions()) == 1


def test_next_persons_code_during_the_gate_pulse_starts_when_the_gate_locks(rig):
    rig.resident_comes(2.2)
    assert rig.engine.state == "gate_open"
    rig.show(rig.pass_text(holder="Sun Li"))
    rig.emulator.person_leaves()  # through the gate; Sun Li steps up
    rig.run(0.5)
    rig.emulator.person_arrives(36.4)
    rig.run(3.5)
    assert len(rig.decisions()) == 2


def test_pass_only_mode_decides_on_the_code_alone(make_rig):
    rig = make_rig(policy={"mode": "pass_only"})
    rig.show(rig.pass_text())
    assert rig.decisions()[-1]["decision"] == "pass"
    assert not rig.engine.wants_readings


def test_history_is_updated_after_commit_so_passback_applies(make_rig):
    rig = make_rig(policy={"mode": "pass_only", "passback": {"mode": "hard"}})
    text = rig.pass_text()
    rig.show(text)
    rig.run(6)
    rig.show(text)
    assert [d["decision"] for d in rig.decisions()] == ["pass", "deny"]
    assert rig.decisions()[-1]["reasons"] == ["passback"]


def test_list_changes_apply_to_the_next_passage(make_rig):
    rig = make_rig(policy={"mode": "pass_only"})
    today = rig.clock.now().date()
    rig.lists.add_quarantine("Q-1", None, today, today + timedelta(days=3), actor="guard")
    rig.show(rig.pass_text(household="Q-1"))
    assert rig.decisions()[-1]["reasons"] == ["quarantined"]


@pytest.mark.parametrize(("held", "shown"), [("欧阳娜娜", "欧阳 娜娜"), ("王 芳", "王芳")])
def test_a_quarantined_person_whose_pass_spells_the_name_with_a_space_is_stopped(
    make_rig, held, shown
):
    """The console turns an IME's full-width space into a space (``欧阳　娜娜`` is stored as
    ``欧阳 娜娜``); the quarantine says ``欧阳娜娜``. Before: the gate let her out, no alarm."""
    rig = make_rig(policy={"mode": "pass_only"})
    today = rig.clock.now().date()
    rig.lists.add_quarantine("5-702", held, today, today + timedelta(days=14), actor="guard")
    rig.show(rig.pass_text(household="5-702", holder=shown))
    assert rig.decisions()[-1]["reasons"] == ["quarantined"]
    assert rig.decisions()[-1]["alarm"] == "quarantine_breach"


def test_personal_data_never_reaches_log_lines(rig, caplog):
    with caplog.at_level(logging.DEBUG):
        rig.show(rig.pass_text(household="Sec-H9", holder="Secret P"))
        rig.emulator.person_arrives(36.6)
        rig.run(6)
        rig.engine.manual(
            "manual_pass",
            "guard-zhou",
            "Secret P's cousin",
            "in",
            person={"phone": "13800001111"},
        )
    assert rig.decisions()
    text = caplog.text
    for secret in ("Sec-H9", "Secret P", "13800001111"):
        assert secret not in text
    decision = rig.decisions()[0]
    assert decision["holder_initial"] == "S."
    assert "holder" not in decision


def test_wall_clock_jump_does_not_break_the_step_timeouts(rig):
    rig.show(rig.pass_text())
    rig.clock.set_wall(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))  # NTP step mid-passage
    rig.run(6.5)
    assert [d["reasons"] for d in rig.decisions()] == [["no_temperature"]]


def test_one_way_kiosk_records_its_own_direction(make_rig):
    rig = make_rig(
        policy={"mode": "pass_only"}, site={"direction": "out", "default_direction": "in"}
    )
    rig.show(rig.pass_text(), direction=None)
    assert rig.decisions()[-1]["direction"] == "out"
    with pytest.raises(ValueError, match="only passes 'out'"):
        rig.engine.select_direction("in")


def test_selected_direction_applies_to_one_passage_only(make_rig):
    rig = make_rig(policy={"mode": "pass_only"})
    rig.engine.select_direction("out")
    rig.show(rig.pass_text(), direction=None)
    rig.run(8)
    rig.show(rig.pass_text(holder="Sun Li"), direction=None)
    assert [d["direction"] for d in rig.decisions()] == ["out", "in"]


def test_direction_pressed_while_measuring_changes_the_passage_under_way(rig):
    rig.show(rig.pass_text(), direction=None)
    rig.engine.select_direction("out")
    rig.emulator.person_arrives(36.6)
    rig.run(4)
    assert rig.decisions()[-1]["direction"] == "out"


def test_a_person_lingering_after_the_result_is_not_measured_again(make_rig):
    rig = make_rig(engine={"order": "temperature_first", "code_timeout_s": 3})
    rig.emulator.person_arrives(36.6)
    rig.run(3)
    rig.show(rig.pass_text())
    rig.run(12)  # still standing at the sensor well past the result
    assert len(rig.decisions()) == 1
    rig.emulator.person_leaves()
    rig.run(2)
    rig.emulator.person_arrives(36.5)  # the next person
    rig.run(3)
    assert rig.engine.state == "awaiting_code"


def test_calibration_store_is_read_for_each_new_measurement(rig, tmp_path):
    from kiosk.calibration import Calibration, CalibrationStore

    store = CalibrationStore(tmp_path / "calibration.json")
    rig.engine.calibration = store
    assert isinstance(rig.engine.current_calibration(), Calibration)
    Calibration(offset_c=3.0).save(tmp_path / "calibration.json")
    assert rig.engine.current_calibration().offset_c == 3.0


def test_a_thermometer_flapping_for_hours_is_a_bounded_number_of_engine_lines(rig, caplog):
    """A loose wire: the sensor fails and reads again every few seconds. The engine logged
    'thermometer fault' and 'thermometer recovered' at each turn: 17,280 lines a day."""
    from kiosk.devices import SensorFault, ThermoReading

    caplog.set_level("INFO", logger="kiosk.engine")
    for _ in range(6 * 360):  # every 10 s for six hours
        rig.engine.on_sensor_fault(SensorFault("I2C error EREMOTEIO"), rig.clock.monotonic_ns())
        rig.engine.tick()
        rig.clock.advance(5)
        rig.engine.on_reading(ThermoReading(24.2, 24.0, rig.clock.monotonic_ns()))
        rig.engine.tick()
        rig.clock.advance(5)
    lines = [r for r in caplog.records if r.name == "kiosk.engine" and r.levelno >= logging.INFO]
    assert len(lines) <= 6 * 7
    assert lines[0].levelname == "WARNING" and "EREMOTEIO" in lines[0].getMessage()
    assert lines[-1].levelname == "INFO"  # the state it is left in: working
    assert rig.engine.degraded == ()


def test_a_registered_residents_outing_is_its_households_and_only_a_registration_names_one(rig):
    """A resident registered by hand going out was recorded with no household: the outing
    counted against no quota. The registration now names it (``household``), as a pass's
    passage would; a manual decision or a vehicle cannot, nor a household that is no text."""
    person = {"name": "Wang Fang", "unit": "3-402"}
    rig.engine.manual("manual_pass", "guard-zhou", "clinic", "out", person=person,
                      kind="registration", household="３-402")  # fmt: skip
    [event] = rig.events()
    assert event["household"] == "3-402"
    for kind, household in (("vehicle", "3-402"), ("manual", "3-402"), ("registration", "")):
        with pytest.raises(ValueError, match="household"):
            rig.engine.manual("manual_pass", "guard-zhou", "x", "out", person=person,
                              kind=kind, household=household)  # fmt: skip
    assert len(rig.events()) == 1


def test_a_registered_residents_household_is_at_most_40_characters(rig):
    """The form's unit box takes 40 characters: a household longer than that reaching the
    engine (a script, a form edited by hand) is refused as bad input, nothing recorded; 40
    (after the outer spaces go) is taken."""
    person = {"name": "Wang Fang", "unit": "3-402"}
    with pytest.raises(ValueError, match="household: at most 40 characters"):
        rig.engine.manual("manual_pass", "guard-zhou", "x", "out", person=person,
                          kind="registration", household="H" * 41)  # fmt: skip
    assert rig.events() == []
    rig.engine.manual("manual_pass", "guard-zhou", "x", "out", person=person,
                      kind="registration", household=f" {'H' * 40} ")  # fmt: skip
    [event] = rig.events()
    assert event["household"] == "H" * 40
