"""``kiosk demo`` left running (a showroom screen, a training laptop): its stream of visitors
loops for ever, and what its emulated devices and its scenario driver keep of each round
stays bounded, as a gate's own structures do (tests/test_bounded_day.py)."""

from __future__ import annotations

from checkpoint.replay import DeviceTarget, ScenarioDriver, parse_scenario
from drivers.gate import COMMANDS_KEPT, FakeGate


def test_the_emulated_relay_keeps_its_latest_commands_not_every_one_since_the_start(clock):
    gate = FakeGate(clock)
    for n in range(5 * COMMANDS_KEPT):  # a pass opens it, its pulse's end locks it
        gate.set_open(n % 2 == 0)
        clock.advance(1.5)
        assert len(gate.commands) <= 2 * COMMANDS_KEPT
    assert [c.open_ for c in gate.commands[-2:]] == [True, False]  # the latest are kept
    assert gate.commands[-1].mono_ns == clock.monotonic_ns() - 1_500_000_000
    assert gate.attempts == 5 * COMMANDS_KEPT


def test_the_demo_streams_driver_keeps_one_rounds_steps_however_often_it_loops(clock):
    scenario = parse_scenario(
        {"name": "loop", "steps": [{"at_s": 0, "code": "a visitor"}, {"at_s": 5, "code": "b"}]}
    )
    shown: list[str] = []
    target = DeviceTarget(clock, code_sink=lambda text, _way: shown.append(text))
    driver = ScenarioDriver(scenario, clock, target)
    for _ in range(1_000):  # the demo's play_realtime(repeat=True)
        for index, step in driver.due(10.0):
            driver.apply(index, step)
        assert driver.done and driver.applied == [0, 1]
        driver.reset()
    assert len(shown) == 2_000
