"""Who is who at the gate: the engine's safety promises against the ground truth of who stood
at the thermometer.

A state machine drives the real engine (``test_engine.Rig``: the real policy, thermometry and
event log on the emulated MLX90614) with a handful of people, each with their own body
temperature (normal or feverish) and their own passes. It knows what the kiosk cannot: who is
in the thermometer's view when (people step up after a gap, short or long, or take the place
of the one in view with no gap at all), and who shows which code when (the person in view, or
someone the thermometer does not see), in code-first and temperature-first mode, with either
direction, sensor faults, guard actions and time passing. After every step, for every
``pass`` recorded:

1. the code's holder, if feverish, did not pass on a fever read in that passage;
2. the temperature of the pass is its holder's own (the plateau of the holder's forehead),

except for the limits docs/engine.md documents (``_documented_limit``), each encoded as
narrowly as the document states it, so any other pass on a temperature that was not the
holder's fails.

Whose a temperature is: the emulator's plateau of each person's forehead (default view, the
rig's 24 degC air) is known, and the people's bodies are 0.8 degC apart (~0.6 degC object), so
the recorded object reading is attributed to the nearest plateau of those in view during the
passage (the stays joined by gaps under ``left_after_s``), or to nobody (a blend of two
people) when it lies more than ``OWN_TOL_C`` from every one; with the holder alone in view it
is theirs, however well it was read (accuracy is the thermometry's tests' and bench's).

The unit suite runs a few examples, derandomized (the same on every run); the hunt,
``test_who_is_who_hunt`` (marked slow: CI's full run), runs 1000 of them, derandomized, or
``WHO_IS_WHO_EXAMPLES`` (``WHO_IS_WHO_SEED`` set too, to any value: new random examples each
run). What it found at 1000 derandomized examples is fixed and pinned below: a near-threshold
fever replaced as its reading neared its top, then a fever's own approach tail read ~0.2 degC
(object) low; since then it is clean, and CI keeps it so.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import event as statistic
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from test_engine import Rig
from test_engine_properties import RigMachine

from drivers.mlx90614_emulator import Mlx90614Emulator, skin_reading_c
from kiosk.clock import FakeClock
from kiosk.devices import ThermoReading
from kiosk.engine import RETURNED_COOLER_C, WARMER_RISE_C
from kiosk.thermometry import REMEASURE_AGREES_C

FEVER_C = 37.3
AMBIENT_C = 24.0  # the rig's emulator
#: Bodies the people are drawn from, 0.8 degC apart (normal below 37.3, feverish above).
BODIES = (36.1, 36.9, 37.7, 38.5, 39.3)
#: How far (object) a recorded temperature may lie from a forehead's plateau and still be its
#: reading: the sensor's noise (0.06), the early plateau fit, the chip's filter.
OWN_TOL_C = 0.3
#: The default calibration's error against the emulator's skin model (docs/thermometer.md).
CALIBRATION_C = 0.4
#: Measurement slack for the documented limits' thresholds (object degC; seconds).
SLACK_C = 0.1
SLACK_S = 0.15
GAPS = (0.0, 0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 1.0)
WAITS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5)


def plateau(body_c: float) -> float:
    return skin_reading_c(body_c, AMBIENT_C)


@dataclass
class Stay:
    """One person in the thermometer's view, from ``start_s`` to ``end_s`` (None: still)."""

    who: int
    start_s: float
    end_s: float | None = None
    #: The warmest object reading the kiosk sampled while they were in view.
    peak_c: float = -math.inf


@dataclass(frozen=True)
class Show:
    """A code shown: whose it is, when, who the thermometer saw then, and whether the kiosk
    kept it for later (busy)."""

    holder: int
    at_s: float
    in_view: int | None
    queued: bool
    stay: int | None  # the index of the stay in view then


class WhoIsWhoMachine(RigMachine):
    def __init__(self) -> None:
        super().__init__("kiosk-who-is-who-")
        self.bodies: list[float] = []
        self.stays: list[Stay] = []
        self.shows: dict[str, Show] = {}
        self.checked: set[int] = set()
        self.store_failing = False

    @initialize(
        order=st.sampled_from(["code_first", "temperature_first"]),
        bodies=st.lists(st.sampled_from(BODIES), min_size=2, max_size=3, unique=True),
    )
    def build(self, order: str, bodies: list[float]) -> None:
        self.new_rig(order)
        assert self.rig is not None and self.rig.emulator.ambient_c == AMBIENT_C
        self.bodies = bodies
        engine = self.rig.engine
        to_engine = engine.on_reading

        def on_reading(reading: ThermoReading) -> None:
            if self.in_view is not None:
                self.stays[-1].peak_c = max(self.stays[-1].peak_c, reading.object_c)
            to_engine(reading)

        engine.on_reading = on_reading  # type: ignore[method-assign]

    @property
    def in_view(self) -> int | None:
        if self.stays and self.stays[-1].end_s is None:
            return self.stays[-1].who
        return None

    # ------------------------------------------------------------------ people

    @rule(who=st.integers(0, 2), gap=st.sampled_from(GAPS), then=st.sampled_from(WAITS))
    def steps_up(self, who: int, gap: float, then: float) -> None:
        """``who`` steps up to the thermometer; whoever is in view leaves ``gap`` seconds
        before (0: takes their place with no gap at all); ``then`` seconds go by."""
        assert self.rig is not None
        who %= len(self.bodies)
        if self.in_view == who:
            self.rig.run(then)
            return
        if self.in_view is not None:
            self._leaves()
            if gap:
                self.rig.run(gap)
        elif self.stays and self.stays[-1].who == who and self.stays[-1].end_s == self.now_s:
            self.rig.run(max(gap, 0.05))  # nobody leaves and is back in no time at all
        self.rig.emulator.person_arrives(self.bodies[who])
        self.stays.append(Stay(who, self.now_s))
        self.rig.run(then)

    @rule(
        who=st.integers(0, 2),
        gap=st.sampled_from(GAPS),
        shows_at=st.sampled_from([0.0, 0.1, 0.3, 0.5, 1.0, 2.0]),
        direction=st.sampled_from(["in", "out", None]),
        then=st.sampled_from(WAITS),
    )
    def visit(
        self, who: int, gap: float, shows_at: float, direction: str | None, then: float
    ) -> None:
        """``who`` steps up (as in ``steps_up``), shows their code ``shows_at`` seconds later
        and stays ``then`` seconds more."""
        self.steps_up(who, gap, shows_at)
        self.shows_code(None, direction, then)

    @precondition(lambda self: self.rig is not None and self.in_view is not None)
    @rule()
    def leaves(self) -> None:
        self._leaves()

    def _leaves(self) -> None:
        assert self.rig is not None
        self.rig.emulator.person_leaves()
        self.stays[-1].end_s = self.now_s

    @rule(
        who=st.one_of(st.none(), st.integers(0, 2)),
        direction=st.sampled_from(["in", "out", None]),
        then=st.sampled_from(WAITS),
    )
    def shows_code(self, who: int | None, direction: str | None, then: float) -> None:
        """The person in view (``None``), or ``who`` wherever they are, shows their own code;
        ``then`` seconds go by."""
        assert self.rig is not None
        holder = self.in_view if who is None else who % len(self.bodies)
        if holder is None:
            return
        tag = f"P{holder}-{len(self.shows)}"
        text = self.rig.pass_text(household=f"H-{len(self.shows)}", holder=tag)
        self.rig.show(text, direction)
        queued = self.rig.engine._pending_code is not None  # noqa: SLF001
        stay = len(self.stays) - 1 if self.in_view is not None else None
        self.shows[tag] = Show(holder, self.now_s, self.in_view, queued, stay)
        self.rig.run(then)

    # ------------------------------------------------------------------ faults, guard, time

    @rule(seconds=st.sampled_from([0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 6.0]))
    def time_passes(self, seconds: float) -> None:
        assert self.rig is not None
        self.rig.run(seconds)

    @rule(
        what=st.sampled_from(
            ["sensor_glitch", "store", "manual_pass", "manual_deny", "button_in", "button_out"]
        ),
        reads=st.integers(1, 4),
    )
    def meanwhile(self, what: str, reads: int) -> None:
        """A sensor glitch (``reads`` failed reads), the store failing or recovering, a guard's
        decision or a direction button, whatever the kiosk is doing (one rule, so that people
        and codes make up most steps)."""
        assert self.rig is not None
        if what == "sensor_glitch":
            self.rig.emulator.inject("nack", reads)
        elif what == "store":
            if self.store_failing:
                self.rig.store.recover()
            else:
                self.rig.store.fail()
            self.store_failing = not self.store_failing
        elif what.startswith("manual_"):
            self.rig.engine.manual(what, "guard-zhou", "at the gate", "in")
        else:
            self.rig.engine.select_direction(what.removeprefix("button_"))

    # ------------------------------------------------------------------ the promise

    def _group(self, show: Show, until_s: float) -> tuple[list[Stay], int] | None:
        """The stays the kiosk cannot tell apart from the one the code was shown in: those
        joined to it by gaps shorter than ``left_after_s`` (docs/engine.md: "Someone back in
        view within left_after_s is the same passage"; counted from the first sample that
        shows the fall), up to the decision. With the index of
        the stay the code was shown in; None if nobody was in view then."""
        assert self.rig is not None
        same_gap = self.rig.config.engine.left_after_s + self.sample_s  # first seen fallen
        at = show.stay
        if at is None:
            return None
        lo = at
        while lo > 0:
            prev, cur = self.stays[lo - 1], self.stays[lo]
            if prev.end_s is None or cur.start_s - prev.end_s >= same_gap:
                break
            lo -= 1
        hi = at
        while hi + 1 < len(self.stays):
            cur, nxt = self.stays[hi], self.stays[hi + 1]
            if nxt.start_s > until_s or cur.end_s is None or nxt.start_s - cur.end_s >= same_gap:
                break
            hi += 1
        return self.stays[lo : hi + 1], at - lo

    def _source(self, object_c: float, among: set[int]) -> int | None:
        """Whose forehead, of those ``among``, the recorded object reading is (None: nobody's:
        a blend, a view lost). With one forehead in the passage it is theirs, however well it
        was read (the thermometry's accuracy is not who is who)."""
        if len(among) == 1:
            return next(iter(among))
        dist, who = min((abs(plateau(self.bodies[i]) - object_c), i) for i in among)
        return who if dist <= OWN_TOL_C else None

    @property
    def sample_s(self) -> float:
        assert self.rig is not None
        return 1.0 / self.rig.config.thermometer.thermometry.sample_hz

    def _not_seen_with_it(self, show: Show) -> str | None:
        """Which documented limit says the kiosk measures whoever steps up for this code: its
        holder was not at the thermometer with it. None: they were."""
        if show.queued:
            # docs/engine.md "A code shown while the kiosk is busy ... is kept ... and starts its
            # passage when the kiosk is free": whoever is measured then is measured for it.
            return "kept for later"
        if show.in_view != show.holder:
            # docs/engine.md "A code shown by someone the thermometer does not see": the
            # single-pixel thermometer and the camera cannot tell who holds a code.
            return "shown out of view"
        assert show.stay is not None
        left_s = self.stays[show.stay].end_s
        if left_s is not None and left_s - show.at_s < self.sample_s:
            # Gone before the thermometer's next sample: not seen with it either.
            return "shown out of view"
        assert self.rig is not None
        margin = self.rig.config.thermometer.thermometry.presence_margin_c
        if left_s is not None and self.stays[show.stay].peak_c < AMBIENT_C + margin:
            # In view for a sample or so but gone before their forehead read as anyone there
            # (docs/thermometer.md "presence"): the thermometer did not see them either.
            return "shown out of view"
        return None

    def _documented_limit(self, event: dict, show: Show, source: int | None) -> str | None:
        """Which documented limit (docs/engine.md) lets this pass stand on a temperature that
        was not its holder's, who was in view with the code; None: none does (a defect)."""
        group = self._group(show, event["mono_ns"] / 1e9)
        assert group is not None
        stays, at = group
        whos = [s.who for s in stays]
        obj = event["temp_object_c"]
        left_s = stays[at].end_s
        if len(stays) > at + 1 and left_s is not None and left_s - show.at_s <= 2 * self.sample_s:
            # docs/engine.md "What is left": a holder replaced with no gap within two samples of
            # showing the code (code first): the measurement starts on a reading that only
            # falls, which it takes for a warm wrist cooling.
            return "replaced right after the code"
        assert self.rig is not None
        window_s = self.rig.config.thermometer.thermometry.stable_window * self.sample_s
        if (
            len(stays) > at + 1
            and left_s is not None
            and stays[at + 1].start_s == left_s
            and left_s - show.at_s <= window_s
            and obj < stays[at].peak_c
            and self.bodies[show.holder] < FEVER_C
        ):
            # docs/engine.md "What is left": a holder not feverish replaced with no gap by
            # someone cooler before the measurement's first stable window closed (found by
            # the unit machine's draw in session 15, on 9b8f0de too): the fall, short of the
            # 2 degC that says someone left, is taken for a forehead settling.
            return "replaced by someone cooler before the first stable window"
        if len(stays) > at + 1 and stays[at].peak_c < obj + RETURNED_COOLER_C + SLACK_C:
            # docs/engine.md "What is left": a code's holder who steps out (no gap, or one
            # under left_after_s) before their reading rose RETURNED_COOLER_C above the
            # reading of whoever steps in: one rise the single-pixel thermometer cannot tell
            # from the holder's own approach.
            return "replaced before their reading rose above the newcomer's"
        if source is None:
            return None
        obj = event["temp_object_c"]
        holder_c = plateau(self.bodies[show.holder])
        if source in whos[:at]:
            # The holder took the place of the person measured (no gap the reading could show).
            if holder_c - obj < WARMER_RISE_C + SLACK_C:
                # docs/engine.md "A swap to someone no warmer while a temperature awaits its
                # code keeps the temperature taken" (no warmer: under 0.6 degC object above).
                return "swap to someone no warmer"
            rise = holder_c - obj
            t_rise = Mlx90614Emulator.approach_tau_s * math.log(rise / (rise - WARMER_RISE_C))
            if show.at_s - stays[at].start_s <= t_rise + self.sample_s + SLACK_S:
                # docs/engine.md "a code shown within about 0.3 s of a swap to someone warmer,
                # before any sample shows the rise".
                return "code shown before the rise"
            return None
        if source in whos[at + 1 :]:
            # The holder's place was taken after the code (no gap the reading could show).
            fever_c = stays[at].peak_c  # no reading of the holder, the fever's too, was warmer
            if (
                self.bodies[show.holder] >= FEVER_C
                and fever_c - obj <= REMEASURE_AGREES_C + SLACK_C
            ):
                # docs/engine.md "What is left: a swap to someone within ~0.5 degC of the
                # fever's reading" (REMEASURE_AGREES_C object) during its re-measure.
                return "swap within 0.5 degC of the fever at its re-measure"
            return None
        return None

    @invariant()
    def a_pass_is_on_its_holders_own_temperature(self) -> None:
        if self.rig is None:
            return
        for event in self.rig.events():
            if event["seq"] in self.checked:
                continue
            self.checked.add(event["seq"])
            if event["decision"] != "pass" or event["kind"] != "passage":
                continue
            show = self.shows[event["holder"]]
            unseen = self._not_seen_with_it(show)
            if unseen is not None:
                statistic(f"pass on whoever stepped up: {unseen}")
                continue
            group = self._group(show, event["mono_ns"] / 1e9)
            assert group is not None
            source = self._source(event["temp_object_c"], {s.who for s in group[0]})
            if source == show.holder:
                statistic("pass on the holder's own reading")
                # Their own reading: how close to the threshold it reads is the thermometry's
                # accuracy (the default calibration within 0.4 degC: docs/thermometer.md), not
                # who is who; a clear fever must not read normal.
                assert self.bodies[show.holder] < FEVER_C + CALIBRATION_C, (event, self.bodies)
                continue
            limit = self._documented_limit(event, show, source)
            statistic(f"pass on another's reading: {limit}")
            feverish = self.bodies[show.holder] >= FEVER_C
            what = "a feverish holder passed" if feverish else "a pass on another's reading"
            assert limit is not None, (
                f"{what}: holder {show.holder} ({self.bodies[show.holder]}), reading from "
                f"{source} (object {event['temp_object_c']}); bodies {self.bodies}; "
                f"show {show}; stays {self.stays}; event at {event['mono_ns'] / 1e9}"
            )


# Derandomized: the suite's verdict is the same on every run and machine (a hunt for new
# cases is a run with WHO_IS_WHO_SEED set, or with more WHO_IS_WHO_EXAMPLES).
_DERANDOMIZE = "WHO_IS_WHO_SEED" not in os.environ

WhoIsWhoMachine.TestCase.settings = settings(
    max_examples=30,
    derandomize=_DERANDOMIZE,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_no_pass_on_a_temperature_that_was_not_its_holders = WhoIsWhoMachine.TestCase
test_no_pass_on_a_temperature_that_was_not_its_holders.pytestmark = [pytest.mark.slow]


class WhoIsWhoHunt(WhoIsWhoMachine):
    """The same, run hard (CI's slow run)."""


WhoIsWhoHunt.TestCase.settings = settings(
    max_examples=max(1, int(os.environ.get("WHO_IS_WHO_EXAMPLES") or 1000)),
    derandomize=_DERANDOMIZE,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# A few minutes at 1000 derandomized examples: CI's slow run, a gate since it came out clean.
test_who_is_who_hunt = pytest.mark.slow(WhoIsWhoHunt.TestCase)


# ---------------------------------------------------------------------- what the hunt found


def test_a_holder_gone_before_the_thermometer_saw_anyone_is_a_code_shown_out_of_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by the hunt (a new Hypothesis release drew it): a feverish holder steps up, shows
    their code at once and is gone a sample later, before their forehead read as anyone there
    (24.3 degC against the air's 24); someone normal steps up 0.5 s later and is measured for
    the code. The kiosk saw one person: the documented "code shown by someone the thermometer
    does not see", not a fever read as normal, which the hunt had called it (its model took
    a stay of one sample for a holder seen)."""
    said: list[str] = []
    monkeypatch.setattr(sys.modules[__name__], "statistic", said.append)
    machine = WhoIsWhoMachine()
    try:
        machine.build(order="code_first", bodies=[36.1, 36.9, 37.7])
        machine.visit(direction="in", gap=0.0, shows_at=0.0, then=0.05, who=2)
        machine.visit(direction="in", gap=0.4, shows_at=2.0, then=0.0, who=0)
        machine.a_pass_is_on_its_holders_own_temperature()
        [event] = [e for e in machine.rig.events() if e["holder"] == "P2-0"]  # type: ignore[union-attr]
        assert event["decision"] == "pass" and event["temp_c"] < 36.1
        assert "pass on whoever stepped up: shown out of view" in said
    finally:
        machine.teardown()


def _code_then_stepped_out(
    tmp_path: Path, holder_c: float, leaves_s: float, gap_s: float, newcomer_c: float
) -> Rig:
    """A holder at ``holder_c`` steps up and shows their code at once, steps out after
    ``leaves_s`` and, ``gap_s`` later (under ``left_after_s``), someone at ``newcomer_c``
    steps up in their place and stays."""
    rig = Rig(FakeClock(start=datetime(2026, 3, 2, 8, 30, tzinfo=UTC)), tmp_path)
    rig.emulator.person_arrives(holder_c)
    rig.show(rig.pass_text(holder="Zhang Min"), "in")
    rig.run(leaves_s)
    rig.emulator.person_leaves()
    rig.run(gap_s)
    rig.emulator.person_arrives(newcomer_c)
    rig.run(6.0)
    return rig


@pytest.mark.parametrize(
    ("holder_c", "leaves_s", "gap_s", "newcomer_c"),
    [(37.7, 0.875, 0.125, 36.1), (38.5, 0.75, 0.125, 36.5), (39.3, 0.625, 0.125, 36.1)],
)
def test_a_forehead_back_within_left_after_s_reading_cooler_than_the_one_that_left_never_passes(
    tmp_path: Path, holder_c: float, leaves_s: float, gap_s: float, newcomer_c: float
) -> None:
    """Found by the hunt (code first): a feverish holder shows their code, is measured for
    under a second (the reading still rising, no fever yet) and steps out; someone normal steps
    in within ``left_after_s``, so the 2 degC fall never lasted long enough to say the holder
    left. The view was doubted (``unsteady``) and re-measured, on the newcomer, who settled
    well below the reading the holder had already reached: the holder's code passed on the
    newcomer's temperature. A forehead back in view reading more than ``_FELL_C`` below the
    warmest reading of the one that left is not evidence of that person's temperature."""
    rig = _code_then_stepped_out(tmp_path, holder_c, leaves_s, gap_s, newcomer_c)
    try:
        [event] = rig.events()
        assert event["decision"] != "pass", event
    finally:
        rig.close()


def test_the_same_forehead_back_within_left_after_s_is_still_measured_and_passes(
    tmp_path: Path,
) -> None:
    """The other side: the holder themself turning away for a moment (a 2 degC fall) and back
    within ``left_after_s`` is the same passage, measured and passed as before."""
    rig = _code_then_stepped_out(tmp_path, 36.6, 0.875, 0.125, 36.6)
    try:
        [event] = rig.events()
        assert (event["decision"], event["reasons"]) == ("pass", ["ok"]), event
    finally:
        rig.close()


@pytest.mark.parametrize(("holder_c", "newcomer_c"), [(39.3, 36.9), (38.5, 36.1)])
def test_a_fever_read_right_after_the_code_is_not_passed_on_the_cooler_forehead_after_it(
    tmp_path: Path, holder_c: float, newcomer_c: float
) -> None:
    """Found by the hunt (code first): a feverish holder, in view a second already, shows
    their code and, 0.375 s later, someone normal takes their place with no gap. The
    measurement's first samples read the fever (no stable window yet), then the reading fell
    ~1.4 degC (short of the 2 degC that says someone left) to the newcomer's plateau; a
    reading that only falls was taken for a warm wrist cooling, and the holder's code passed on
    the newcomer's temperature. A normal verdict more than ``REMEASURE_AGREES_C`` below a
    fever this measurement already read is not that forehead (as ``fever_stands``)."""
    rig = Rig(FakeClock(start=datetime(2026, 3, 2, 8, 30, tzinfo=UTC)), tmp_path)
    try:
        rig.emulator.person_arrives(holder_c)
        rig.run(1.0)
        rig.show(rig.pass_text(holder="Zhang Min"), "in")
        rig.run(0.375)
        rig.emulator.person_arrives(newcomer_c)  # in the holder's place, no gap
        rig.run(6.0)
        [event] = rig.events()
        assert event["decision"] != "pass", event
    finally:
        rig.close()


def _swapped_as_the_reading_nears_its_top(
    tmp_path: Path, order: str, holder_c: float, newcomer_c: float, swap_s: float, code_s: float
) -> Rig:
    """A holder at ``holder_c`` steps up (code first: showing their code at once; temperature
    first: showing it ``code_s`` after stepping up) and, ``swap_s`` in, someone at
    ``newcomer_c`` takes their place with no gap and stays."""
    rig = Rig(
        FakeClock(start=datetime(2026, 3, 2, 8, 30, tzinfo=UTC)), tmp_path, engine={"order": order}
    )
    rig.emulator.person_arrives(holder_c)
    steps = sorted([(0.0 if order == "code_first" else code_s, "code"), (swap_s, "swap")])
    done_s = 0.0
    for at_s, what in steps:
        rig.run(at_s - done_s)
        done_s = at_s
        if what == "code":
            rig.show(rig.pass_text(holder="Zhang Min"), "in")
        else:
            rig.emulator.person_leaves()
            rig.emulator.person_arrives(newcomer_c)
    rig.run(8.0)
    return rig


@pytest.mark.parametrize(
    ("order", "holder_c", "newcomer_c", "swap_s", "code_s"),
    [
        ("code_first", 37.7, 36.1, 1.5, 0.0),  # the hunt's case
        ("code_first", 37.7, 36.1, 1.75, 0.0),
        ("code_first", 37.8, 36.8, 1.5, 0.0),
        ("code_first", 37.6, 36.4, 1.875, 0.0),
        ("code_first", 37.5, 36.6, 1.625, 0.0),
        ("temperature_first", 37.7, 36.1, 1.5, 0.0),  # the code shown before the swap
        ("temperature_first", 37.7, 36.1, 1.5, 2.5),  # the code shown after the temperature
        ("temperature_first", 37.6, 35.8, 1.625, 3.0),
    ],
)
def test_a_fever_near_the_threshold_replaced_as_its_reading_nears_its_top_never_passes(
    tmp_path: Path,
    order: str,
    holder_c: float,
    newcomer_c: float,
    swap_s: float,
    code_s: float,
) -> None:
    """Found by the hunt (code first, holder 37.7, newcomer 36.1, swapped 1.5 s in): a fever
    near the threshold, still rising, replaced with no gap by someone cooler. The stable window
    held the top of the holder's rise and the newcomer's first sample, flat enough to be
    stable, and read the holder's own, not yet settled, reading (37.1): a feverish person
    passed. A stable window whose newest sample fell below it is not passed on; the reading
    falls on to the newcomer's, below what the holder read (``fell``: re-measured, then
    denied)."""
    rig = _swapped_as_the_reading_nears_its_top(
        tmp_path, order, holder_c, newcomer_c, swap_s, code_s
    )
    try:
        [event] = rig.events()
        assert event["decision"] != "pass", event
    finally:
        rig.close()


def test_a_normal_holder_who_stays_through_the_same_moment_still_passes(tmp_path: Path) -> None:
    """The other side: nobody takes the place; a normal holder is measured and passed."""
    rig = _swapped_as_the_reading_nears_its_top(tmp_path, "code_first", 36.6, 36.6, 1.5, 0.0)
    try:
        [event] = rig.events()
        assert (event["decision"], event["reasons"]) == ("pass", ["ok"]), event
    finally:
        rig.close()


#: The hunt's falsifying example once the swap above was fixed (1000 derandomized examples;
#: shrunk by hand): bodies 37.7 and 36.1 degC, code first. The last step: the 37.7 degC holder,
#: out of view for 0.25 s, steps back up, shows the code 1.0 s later and was read at 37.28
#: (object 34.23; plateau 34.45) on the tail of their own approach.
APPROACH_TAIL = [
    ("visit", {"who": 1, "gap": 0.0, "shows_at": 0.1, "direction": "in", "then": 0.3}),
    ("steps_up", {"who": 0, "gap": 0.0, "then": 0.05}),
    ("leaves", {}),
    ("visit", {"who": 0, "gap": 0.4, "shows_at": 2.0, "direction": "in", "then": 0.05}),
    ("leaves", {}),
    ("steps_up", {"who": 0, "gap": 0.4, "then": 0.05}),
    ("leaves", {}),
    ("visit", {"who": 0, "gap": 0.0, "shows_at": 0.5, "direction": "in", "then": 0.3}),
    ("visit", {"who": 0, "gap": 0.0, "shows_at": 0.3, "direction": "in", "then": 0.2}),
    ("visit", {"who": 1, "gap": 0.4, "shows_at": 0.3, "direction": None, "then": 0.3}),
    ("steps_up", {"who": 1, "gap": 0.0, "then": 0.1}),
    ("visit", {"who": 0, "gap": 0.0, "shows_at": 0.1, "direction": "out", "then": 0.0}),
    ("steps_up", {"who": 2, "gap": 0.2, "then": 0.3}),
    ("steps_up", {"who": 2, "gap": 0.0, "then": 0.2}),
    ("leaves", {}),
    ("steps_up", {"who": 2, "gap": 0.2, "then": 0.2}),
    ("leaves", {}),
    ("visit", {"who": 0, "gap": 0.4, "shows_at": 2.0, "direction": "out", "then": 0.0}),
    ("steps_up", {"who": 0, "gap": 0.0, "then": 0.2}),
    ("leaves", {}),
    ("visit", {"who": 0, "gap": 0.2, "shows_at": 1.0, "direction": "in", "then": 1.0}),
]


def test_a_fevers_own_approach_tail_near_the_threshold_is_not_passed_a_little_low(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hunt's case (docs/engine.md): the 37.7 degC holder's own approach tail, flattened by
    the noise into a stable window, read at 37.28 (0.42 degC low) and passed. A window whose
    line, carried on by the rise still under way, heads for a fever is not passed on: the
    measurement waits for the plateau, which reads the fever (re-measured, denied)."""
    monkeypatch.setattr(sys.modules[__name__], "statistic", lambda *_: None)
    machine = WhoIsWhoMachine()
    try:
        machine.build(order="code_first", bodies=[37.7, 36.1])
        for rule_name, kwargs in [*APPROACH_TAIL, ("time_passes", {"seconds": 6.0})]:
            getattr(machine, rule_name)(**kwargs)
            machine.a_pass_is_on_its_holders_own_temperature()
        assert machine.rig is not None
        last = machine.rig.events()[-1]
        assert (last["holder"], last["decision"]) == ("P0-7", "deny"), last
        assert last["temp_c"] >= FEVER_C, last
    finally:
        machine.teardown()
