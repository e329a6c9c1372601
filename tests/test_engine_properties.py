"""The engine's promises under any interleaving of people, codes, faults and time.

A state machine drives the real engine (``test_engine.Rig``: the real policy, thermometry and
event log on the emulated MLX90614) with people arriving at and leaving the thermometer,
codes shown (valid, forged, by the person in view or by nobody in view), sensor and store
faults and time passing, in virtual time. After every step:

* a passage recorded as ``pass`` carries a temperature below the fever threshold and the
  pass of the code shown;
* the temperature of a pass is that of the person who showed the code: a code shown by a
  feverish person in view of the thermometer never passes, whoever else was measured before
  or after;
* the gate was commanded open only for a recorded pass, after its commit.

The model keeps one person in view at a time, for half a second at least (nobody blinks in and
out of view), and lets the next step up no sooner than a second after one left, or take the
place of the one in view with no gap at all (``swap``) and show a code no sooner than half a
second later (a forehead takes that long to read warmer than the one before it).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from test_engine import Rig

from kiosk.clock import FakeClock
from kiosk.crossing import Outcome
from kiosk.passes import PREFIX
from kiosk.store import StoreFault

FEVER_C = 37.3
BODIES = {"normal": 36.4, "feverish": 38.8}
SWAP_S = 1.0
STAY_S = 0.5


def _gate_opens_only_after_a_committed_pass(rig: Rig) -> None:
    """The relay was commanded open only right after a pass (or a guard's) was committed."""
    passes = {e["seq"] for e in rig.events() if e["decision"] in ("pass", "manual_pass")}
    committed: list[int] = []
    for what, value in rig.calls:
        if what == "commit":
            committed.append(value)
        elif what == "gate" and value:
            assert committed and committed[-1] in passes, rig.calls


def _shown_is_recorded_once(rig: Rig) -> None:
    """Each decision the screens were shown as committed is the event recorded, once."""
    events = {e["seq"]: e for e in rig.events()}
    shown = [d for d in rig.decisions() if d["committed"]]
    seqs = [d["seq"] for d in shown]
    assert len(seqs) == len(set(seqs)), seqs
    for d in shown:
        event = events[d["seq"]]
        assert (event["decision"], event["reasons"]) == (d["decision"], d["reasons"]), (event, d)


class RigMachine(RuleBasedStateMachine):
    """What the engine's state machines share: a rig of their own in a temporary folder,
    built on a clock at 08:30 (``new_rig``), closed and removed at the end of each run."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory(prefix=prefix)
        self.rig: Rig | None = None

    def new_rig(self, order: str) -> Rig:
        clock = FakeClock(start=datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
        self.rig = Rig(clock, Path(self._dir.name), engine={"order": order})
        return self.rig

    def teardown(self) -> None:
        if self.rig is not None:
            self.rig.close()
        self._dir.cleanup()

    @property
    def now_s(self) -> float:
        assert self.rig is not None
        return self.rig.clock.monotonic_ns() / 1e9


class GateMachine(RigMachine):
    def __init__(self) -> None:
        super().__init__("kiosk-engine-props-")
        self.in_view: str | None = None  # "normal" / "feverish" / None
        self.left_at_s = -SWAP_S
        self.shown_by: dict[str, str | None] = {}  # holder -> who showed it (None: unseen)
        self.shows = 0
        self.store_failing = False

    @initialize(order=st.sampled_from(["code_first", "temperature_first"]))
    def build(self, order: str) -> None:
        self.new_rig(order)

    # ------------------------------------------------------------------ people

    @rule(
        who=st.sampled_from(sorted(BODIES)),
        shows_at=st.sampled_from([None, 0.0, 0.3, 1.0, 2.5]),
        stays=st.sampled_from([STAY_S, 1.0, 3.0, 6.0]),
        kind=st.sampled_from(["valid", "valid", "forged"]),
        direction=st.sampled_from(["in", "out", None]),
    )
    def visit(
        self, who: str, shows_at: float | None, stays: float, kind: str, direction: str | None
    ) -> None:
        """Someone steps up, perhaps shows their code ``shows_at`` seconds later, and leaves
        after ``stays`` seconds."""
        self._after_the_last_one_left()
        self._in_view_for(who, shows_at, stays, kind, direction)
        self._leaves()

    def _after_the_last_one_left(self) -> None:
        assert self.rig is not None
        wait = self.left_at_s + SWAP_S - self.now_s
        if wait > 0:
            self.rig.run(wait)

    def _leaves(self) -> None:
        assert self.rig is not None
        self.rig.emulator.person_leaves()
        self.in_view = None
        self.left_at_s = self.now_s

    def _in_view_for(
        self, who: str, shows_at: float | None, stays: float, kind: str, direction: str | None
    ) -> None:
        assert self.rig is not None
        self.rig.emulator.person_arrives(BODIES[who])
        self.in_view = who
        if shows_at is not None and shows_at < stays:
            self.rig.run(shows_at)
            self._show(kind, direction)
            self.rig.run(stays - shows_at)
        else:
            self.rig.run(stays)

    @rule(
        first=st.sampled_from(sorted(BODIES)),
        second=st.sampled_from(sorted(BODIES)),
        shows_at=st.sampled_from([None, 0.5, 1.0, 2.5]),
        direction=st.sampled_from(["in", "out", None]),
    )
    def swap(self, first: str, second: str, shows_at: float | None, direction: str | None) -> None:
        """One person is measured and, with no gap the reading could show, another takes their
        place and perhaps shows a code ``shows_at`` seconds later; then they leave."""
        self._after_the_last_one_left()
        self._in_view_for(first, None, 3.0, "valid", None)
        self._in_view_for(second, shows_at, 6.0, "valid", direction)
        self._leaves()

    @rule(
        kind=st.sampled_from(["valid", "valid", "forged"]),
        direction=st.sampled_from(["in", "out", None]),
    )
    def show_out_of_view(self, kind: str, direction: str | None) -> None:
        """A code shown by someone the thermometer does not see (nobody is in its view)."""
        self._show(kind, direction)

    def _show(self, kind: str, direction: str | None) -> None:
        assert self.rig is not None
        self.shows += 1
        holder = f"P{self.shows}"
        text = self.rig.pass_text(holder=holder)
        if kind == "forged":
            tail = "BBBB" if text.endswith("AAAA") else "AAAA"
            text = PREFIX + text[len(PREFIX) : -4] + tail  # the signature no longer matches
        self.rig.show(text, direction)
        # A code shown while the kiosk is still busy with the one before waits for it; by then
        # its holder may have stepped aside, and whoever presents a wrist is measured for it
        # (the kiosk cannot tell who holds a code it has not started on yet): not checked.
        queued = self.rig.engine._pending_code is not None
        self.shown_by[holder] = None if queued else self.in_view

    # ------------------------------------------------------------------ faults and time

    @rule(reads=st.integers(1, 4))
    def sensor_glitch(self, reads: int) -> None:
        assert self.rig is not None
        self.rig.emulator.inject("nack", reads)

    @rule()
    def store_fails_or_recovers(self) -> None:
        assert self.rig is not None
        if self.store_failing:
            self.rig.store.recover()
        else:
            self.rig.store.fail()
        self.store_failing = not self.store_failing

    @rule()
    def relay_fails_or_recovers(self) -> None:
        assert self.rig is not None
        if self.rig.gate.plugged:
            self.rig.gate.unplug()
        else:
            self.rig.gate.replug()

    # ------------------------------------------------------------------ the guard, the buttons

    @rule(
        decision=st.sampled_from(["manual_pass", "manual_deny"]),
        direction=st.sampled_from(["in", "out"]),
    )
    def guard_decides(self, decision: str, direction: str) -> None:
        """A guard's override or decision, whatever the kiosk is doing."""
        assert self.rig is not None
        self.rig.engine.manual(decision, "guard-zhou", "at the gate", direction)

    @rule(direction=st.sampled_from(["in", "out"]))
    def direction_button(self, direction: str) -> None:
        assert self.rig is not None
        self.rig.engine.select_direction(direction)

    @rule(seconds=st.sampled_from([0.2, 0.5, 1.0, 2.5, 6.0]))
    def time_passes(self, seconds: float) -> None:
        assert self.rig is not None
        self.rig.run(seconds)

    # ------------------------------------------------------------------ promises

    def _passes(self) -> list[dict]:
        assert self.rig is not None
        return [e for e in self.rig.events() if e["decision"] == "pass" and e["kind"] == "passage"]

    @invariant()
    def a_pass_has_a_normal_temperature_and_a_valid_pass(self) -> None:
        if self.rig is None:
            return
        for event in self._passes():
            assert event["temp_c"] is not None and event["temp_c"] < FEVER_C, event
            assert event["pass_id"] and event["holder"] in self.shown_by, event

    @invariant()
    def a_code_shown_by_a_feverish_person_never_passes(self) -> None:
        if self.rig is None:
            return
        for event in self._passes():
            assert self.shown_by.get(event["holder"]) != "feverish", event

    @invariant()
    def the_gate_opens_only_after_a_pass_is_committed(self) -> None:
        if self.rig is None:
            return
        _gate_opens_only_after_a_committed_pass(self.rig)

    @invariant()
    def each_decision_shown_is_the_one_recorded_once(self) -> None:
        if self.rig is not None:
            _shown_is_recorded_once(self.rig)

    @invariant()
    def an_idle_kiosk_has_its_gate_locked(self) -> None:
        if self.rig is None:
            return
        if self.rig.engine.state == "idle":
            assert not self.rig.gate.is_open, self.rig.calls
            assert not self.rig.engine.gate_is_open


GateMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_engine_keeps_its_promises_under_any_interleaving = GateMachine.TestCase
test_the_engine_keeps_its_promises_under_any_interleaving.pytestmark = [pytest.mark.slow]


class AnsweredLaterMachine(RigMachine):
    """The runner's asynchrony: crossings are answered later, in any order (committed, failed,
    or past their deadline and then landing or failing), while people, codes, guard actions,
    direction buttons and time go on. After every step:

    * every decision shown as committed is the record at its ``seq``, shown once;
    * nothing is recorded twice (a held copy of a commit that landed late);
    * the gate is commanded open only after a pass's or a manual pass's commit, and an idle
      kiosk has it locked.
    """

    def __init__(self) -> None:
        super().__init__("kiosk-engine-async-")
        self.held: list = []
        self.late: list = []
        self.notes = 0

    @initialize(order=st.sampled_from(["code_first", "temperature_first"]))
    def build(self, order: str) -> None:
        self.new_rig(order).ports.cross = self.held.append  # answered by the rules below

    @rule(body=st.sampled_from([None, *BODIES.values()]), show=st.booleans())
    def someone(self, body: float | None, show: bool) -> None:
        assert self.rig is not None
        if body is None:
            self.rig.emulator.person_leaves()
        else:
            self.rig.emulator.person_arrives(body)
        if show:
            self.rig.show(self.rig.pass_text(holder=f"P{self.notes}"), None)
            self.notes += 1

    @rule(
        decision=st.sampled_from(["manual_pass", "manual_deny"]),
        direction=st.sampled_from(["in", "out"]),
    )
    def guard_decides(self, decision: str, direction: str) -> None:
        assert self.rig is not None
        self.notes += 1
        self.rig.engine.manual(decision, "guard-zhou", f"note {self.notes}", direction)

    @rule(direction=st.sampled_from(["in", "out"]))
    def direction_button(self, direction: str) -> None:
        assert self.rig is not None
        self.rig.engine.select_direction(direction)

    @rule(
        which=st.integers(0, 3),
        how=st.sampled_from(["commit", "commit", "fail", "pending"]),
        gate_ok=st.booleans(),
    )
    def answer(self, which: int, how: str, gate_ok: bool) -> None:
        assert self.rig is not None
        if not self.held:
            return
        crossing = self.held.pop(which % len(self.held))
        rig = self.rig
        if gate_ok:
            rig.gate.replug()
        else:
            rig.gate.unplug()
        if how == "commit":
            type(rig.ports).cross(rig.ports, crossing)
            return
        fault = StoreFault("store_fault", "disk full")
        if how == "pending":
            self.late.append(crossing)
        outcome = Outcome(crossing, store_fault=fault, pending=how == "pending")
        if outcome.opens_gate:
            outcome = outcome.gate_answered(rig.ports._set_gate(True))  # noqa: SLF001
        rig.engine.on_crossed(outcome)

    @rule(which=st.integers(0, 3), lands=st.booleans())
    def late_commit_ends(self, which: int, lands: bool) -> None:
        assert self.rig is not None
        if not self.late:
            return
        crossing = self.late.pop(which % len(self.late))
        event = self.rig.log.append(crossing.draft) if lands else None
        self.rig.engine.on_late_commit(crossing, event)

    @rule(seconds=st.sampled_from([0.2, 1.0, 2.5, 6.0]))
    def time_passes(self, seconds: float) -> None:
        assert self.rig is not None
        self.rig.run(seconds)

    @invariant()
    def each_decision_shown_is_the_one_recorded_once(self) -> None:
        if self.rig is not None:
            _shown_is_recorded_once(self.rig)

    @invariant()
    def nothing_is_recorded_twice(self) -> None:
        if self.rig is None:
            return
        # A pass the gate did not open for is followed by its ``gate_fault`` deny: the same
        # pass, another record. Twice is the same decision for the same pass or note.
        keys = [
            (e["kind"], e["pass_id"], (e["person"] or {}).get("note"), e["decision"])
            for e in self.rig.events()
            if e["pass_id"] or e["person"]
        ]
        assert len(keys) == len(set(keys)), keys

    @invariant()
    def the_gate_opens_only_after_a_pass_commit_and_is_locked_when_idle(self) -> None:
        if self.rig is None:
            return
        if self.rig.engine.state == "idle":
            assert not self.rig.engine.gate_is_open
            assert not self.rig.gate.is_open, self.rig.calls
        _gate_opens_only_after_a_committed_pass(self.rig)


AnsweredLaterMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_engine_keeps_its_promises_when_answered_later = AnsweredLaterMachine.TestCase
test_the_engine_keeps_its_promises_when_answered_later.pytestmark = [pytest.mark.slow]
