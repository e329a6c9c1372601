"""A relay known not to answer (a USB board unplugged): nobody is recorded as passed through it.

The kiosk raised the gate fault and its screen said out of order, yet a resident who showed a
pass all the same was decided ``pass`` and committed (an outing counted, the passback armed),
the relay failed again and the screen sent them to the guard: the log said they went through
a gate that never opened, and the guard's pass for them was a second outing. While the relay
is in fault a code is a deny that needs the guard, ``gate_fault``, as a thermometer's fault is
``sensor_fault``; the relay's own probe (``engine.idle_probe_s``) clears it when it answers."""

from __future__ import annotations

import pytest
from test_engine import Rig


@pytest.fixture
def rig(clock, tmp_path):
    r = Rig(clock, tmp_path, policy={"mode": "pass_only"})
    yield r
    r.close()


def test_a_code_shown_while_the_relay_is_in_fault_is_not_recorded_as_a_pass(rig):
    rig.gate.unplug()
    rig.show(rig.pass_text(household="A-101"))
    rig.run(1)
    assert "gate" in rig.engine.degraded  # the first pass found the relay gone
    rig.run(6)
    rig.show(rig.pass_text(household="B-202"))
    rig.run(1)
    second = rig.events()[-1]
    assert second["household"] == "B-202"
    assert second["decision"] == "deny"
    assert second["reasons"] == ["gate_fault"]
    assert rig.decisions()[-1]["needs_guard"] is True
    opened = [c for c in rig.gate.commands if c.open_]
    assert opened == []  # and the relay was never asked to open for it


def test_the_relay_back_passes_again(rig):
    rig.gate.unplug()
    rig.show(rig.pass_text(household="A-101"))
    rig.run(7)
    rig.gate.replug()
    rig.run(rig.config.engine.idle_probe_s + 1)  # its probe finds it answering
    assert "gate" not in rig.engine.degraded
    rig.show(rig.pass_text(household="B-202"))
    rig.run(1)
    assert rig.events()[-1]["decision"] == "pass"
    assert rig.gate.commands[-1].open_ is True


def test_a_relay_unplugged_while_idle_is_known_before_the_next_pass(tmp_path):
    """Unplugged while nobody was at the gate: its health said so on the Devices page, but the
    engine learnt it only from the next pass's failed open, so that first resident was still
    recorded as passing a gate that never opened. The health poll's fault now has the relay
    commanded locked (the safe command): its failure is the engine's gate fault, and the next
    pass is denied ``gate_fault`` with the guard called."""
    import test_runner

    r = test_runner.Rig(tmp_path, overrides={"policy": {"mode": "pass_only"}})

    async def main():
        await r.runner.start()
        r.gate.unplug()
        await r.next("alarm", alarm="gate_not_locked", state="raised")
        r.show(r.pass_text(household="B-202"))
        decision = await r.next("decision")
        await r.runner.stop()
        return decision

    try:
        decision = test_runner.run(main())
    finally:
        r.close()
    assert decision["decision"] == "deny" and decision["reasons"] == ["gate_fault"]
    assert [open_ for open_, _ in r.gate_calls if open_] == []


def test_a_relay_gone_while_the_gate_is_held_open_tells_the_guard_at_once(tmp_path):
    """An evacuation holds the gate open for many minutes: a board unplugged meanwhile was
    noticed only by the Devices page, and by the engine first at the lock when it ended. The
    guard is told at once that the gate's state is unknown, and told again when it is back."""
    import test_runner

    r = test_runner.Rig(tmp_path, overrides={"policy": {"mode": "pass_only"}})

    async def main():
        await r.runner.start()
        await r.runner.manual(
            decision="manual_pass",
            operator="guard-zhou",
            reason="smoke in block 3",
            direction="out",
            subject="none",
            evacuate=("fire", 5),
        )
        await r.next("decision")
        r.gate.unplug()
        raised = await r.next("alarm", alarm="gate_fault", state="raised")
        r.gate.replug()
        await r.next("alarm", alarm="gate_fault", state="cleared")
        still = r.runner.engine.evacuation is not None
        await r.runner.stop()
        return raised, still

    try:
        raised, still = test_runner.run(main())
    finally:
        r.close()
    assert "state is unknown" in raised["detail"]
    assert still  # the evacuation goes on
