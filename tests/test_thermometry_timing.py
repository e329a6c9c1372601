"""Time to a temperature: how soon the measurement decides, on emulated visitors (virtual time),
and that deciding sooner never lets a fever through."""

from __future__ import annotations

import math

import pytest

from drivers.mlx90614_emulator import Visit
from drivers.thermometer import FakeMlx90614, build_thermometer
from kiosk.calibration import Calibration
from kiosk.clock import FakeClock
from kiosk.config.thermometer import FakeThermometerConfig, ThermometerSection, ThermometryConfig
from kiosk.devices import ThermoReading
from kiosk.thermometry import Measurement, Temperature, estimate_body_c

SEC = 1_000_000_000
CFG = ThermometryConfig()
WOBBLE = Visit(wobble=0.03, wobble_hz=1.3)  # the bench's wobbling arm


def visitor(
    body_c: float,
    ambient_c: float,
    seed: int,
    visit: Visit,
    cfg: ThermometryConfig = CFG,
    first_s: float | None = None,
) -> list[tuple[Temperature, float, float]]:
    """One visitor through the emulated chain, re-measured as the engine does (once after an
    implausible reading, once before a fever deny): each measurement's result, the seconds from
    presence to it, and the seconds that measurement itself took. The first sample comes
    ``first_s`` after the arrival (default: a whole sample period, as on the bench)."""
    clock = FakeClock()
    section = ThermometerSection(driver=FakeThermometerConfig(ambient_c=ambient_c, seed=seed))
    thermo = build_thermometer(section, clock)
    assert isinstance(thermo, FakeMlx90614)
    for _ in range(4):
        clock.advance(1 / cfg.sample_hz)
        thermo.read()
    thermo.emulator.person_arrives(body_c, visit)
    results: list[tuple[Temperature, float, float]] = []
    done: set[str] = set()
    seen = None
    presence = None
    step = first_s or 1 / cfg.sample_hz
    while True:
        start = clock.monotonic_ns()
        m = Measurement(cfg, Calibration(), start, seen_object_c=seen)
        t = None
        while t is None:
            clock.advance(step)
            step = 1 / cfg.sample_hz
            t = m.add(thermo.read())
        presence = presence or m.presence_mono_ns
        assert presence is not None
        now = clock.monotonic_ns()
        results.append((t, (now - presence) / SEC, (now - start) / SEC))
        fever = t.ok and t.body_c is not None and t.body_c >= cfg.fever_threshold_c
        cause = "implausible" if t.status == "implausible" else "fever" if fever else None
        if cause is None or cause in done:
            return results
        done.add(cause)
        seen = m.doubted_peak_c


def passed(result: Temperature) -> bool:
    return result.ok and result.body_c is not None and result.body_c < CFG.fever_threshold_c


# -- a view that never settles ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_wobbling_arm_in_cold_air_is_doubted_at_two_seconds_not_timed_out(seed):
    # At 16 degC air the bench's wobble (3 % of the view at 1.3 Hz) swings the reading by
    # ~0.45 degC, beyond the stable spread: no window ever forms. It used to time out after
    # 6 s (twice, 9 s, when one lucky window was doubted first); now it is doubted as soon as
    # the view check's 2 s are in, and the re-measure's 1.5 s, then the guard.
    results = visitor(36.6, 16.0, seed, WOBBLE)
    first, at_s, _ = results[0]
    assert first.status == "implausible" and first.doubt == "unsteady", first
    assert at_s <= 2.25
    assert len(results) == 2
    again, total_s, took_s = results[1]
    assert again.status == "implausible" and again.doubt in ("unsteady", "fell"), again
    assert took_s <= 2.0 and total_s <= 4.25


@pytest.mark.parametrize(
    ("body_c", "ambient_c"),
    [
        # The nearest fever in the coldest air runs with the unit tests; the whole sweep
        # (1.4 s a case in cold air: feverish wobblers wait out the timeout) with the slow ones.
        (37.8, 16.0),
        *(
            pytest.param(body, air, marks=pytest.mark.slow)
            for body in (37.8, 38.5, 39.2)
            for air in (16.0, 22.0, 28.0)
            if (body, air) != (37.8, 16.0)
        ),
    ],
)
def test_a_feverish_wobbling_visitor_is_never_passed(body_c, ambient_c):
    for seed in (1, 2, 3):
        results = visitor(body_c, ambient_c, seed, WOBBLE)
        final = results[-1][0]
        assert not passed(final), results
        # A fever is decided on a full plateau only, and measured twice before a deny.
        for t, _, _ in results:
            assert not t.early
            if t.ok and t.body_c >= CFG.fever_threshold_c:
                assert t.doubt is None


def _reading(obj: float, i: int, amb: float = 24.0) -> ThermoReading:
    return ThermoReading(object_c=obj, ambient_c=amb, mono_ns=int((i + 1) * SEC / 8))


def _wobbling(level_c: float, n: int, amp_c: float = 0.5) -> list[float]:
    """A reading swinging below ``level_c`` (a wobble only ever lowers it) at 1.3 Hz."""
    return [level_c - amp_c * (1 - math.cos(2 * math.pi * 1.3 * i / 8)) / 2 for i in range(n)]


def _object_for(body_c: float) -> float:
    return next(
        o / 100
        for o in range(2500, 4200)
        if estimate_body_c(o / 100, 24.0, Calibration()) >= body_c
    )


@pytest.mark.slow
@pytest.mark.parametrize("top_body_c", [37.2, 37.6])
def test_an_unsettled_reading_that_reaches_a_fever_waits_for_a_plateau(top_body_c):
    # The doubt is for readings that look clearly normal at their best: one whose highest
    # moments read a fever, or within the early margin of one, is left to the stable plateau
    # (here none forms: the timeout, then the guard).
    m = Measurement(CFG, Calibration(), 0)
    objects = _wobbling(_object_for(top_body_c), 6 * 8)
    results = [m.add(_reading(o, i)) for i, o in enumerate(objects)]
    decided = [r for r in results if r is not None]
    assert len(decided) == 1 and decided[0].status == "no_temperature"
    # The same swing below a normal level is doubted once 2 s of it are in.
    m = Measurement(CFG, Calibration(), 0)
    objects = _wobbling(_object_for(36.6), 6 * 8)
    decided_at = next(i for i, o in enumerate(objects) if m.add(_reading(o, i)) is not None)
    assert m.result is not None and m.result.doubt == "unsteady"
    assert decided_at + 1 == 16


@pytest.mark.parametrize("tau_s", [0.6, 1.0, 1.5])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_slow_approach_still_rising_is_not_doubted(tau_s, seed):
    # A still view approached slowly has no stable window at 2 s either; it is no wobble.
    results = visitor(36.6, 16.0, seed, Visit(approach_tau_s=tau_s))
    assert len(results) == 1
    t = results[0][0]
    assert passed(t) and t.doubt is None, results


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scene", "ambient_c"), [("step_back", 16.0), ("step_back", 22.0), ("partial_view", 16.0)]
)
def test_a_feverish_visitor_whose_view_is_doubted_sooner_is_still_not_passed(scene, ambient_c):
    # Views whose reading never settles (an edge swaying in it) are now doubted at 2 s instead
    # of waiting for a lucky stable window; the re-measure must still not pass the fever. (A
    # partial view that hides a fever inside the normal range and holds still enough is
    # passed, as before: docs/thermometer.md, "What one pixel cannot tell".)
    visit = {
        "step_back": Visit(step_back_at_s=0.9, step_back_fill=0.85),
        "partial_view": Visit(fill=0.9),
    }[scene]
    doubted = 0
    for body in (37.8, 38.5, 39.2):
        for seed in (1, 2, 3):
            results = visitor(body, ambient_c, seed, visit)
            first, final = results[0][0], results[-1][0]
            if first.doubt is not None:
                doubted += 1
                assert not passed(final), (body, seed, results)
            if scene == "step_back":
                assert not passed(final), (body, seed, results)
    assert doubted >= 3


def _settled_feed(m: Measurement, obj: float, n: int = 24) -> Temperature | None:
    import random

    rng = random.Random(5)
    for i in range(n):
        t = m.add(_reading(obj + rng.gauss(0.0, 0.03), i))
        if t is not None:
            return t
    return None


def test_a_remeasure_after_a_low_reading_needs_more_than_noise_to_clear_the_floor():
    # Doubted "low" (come closer), re-measured at the same place: a reading lifted just over
    # normal_min_c by noise (or a calibration a hair different) is still the same view and
    # stays doubted; one that rose by more than that (the person came closer) is passed.
    seen = _object_for(CFG.normal_min_c - 0.1)
    same = _settled_feed(Measurement(CFG, Calibration(), 0, seen_object_c=seen),
                         _object_for(CFG.normal_min_c + 0.1))  # fmt: skip
    assert same is not None and same.status == "implausible" and same.doubt == "low", same
    closer = _settled_feed(Measurement(CFG, Calibration(), 0, seen_object_c=seen),
                           _object_for(CFG.normal_min_c + 0.4))  # fmt: skip
    assert closer is not None and passed(closer), closer
    # A first measurement has no such margin: normal_min_c itself is the floor.
    first = _settled_feed(Measurement(CFG, Calibration(), 0), _object_for(CFG.normal_min_c + 0.1))
    assert first is not None and passed(first), first


def test_a_feverish_visitor_arriving_between_two_samples_is_not_decided_early():
    # Found by session 6's randomised search with the arrival at a random phase between two
    # samples (seed 5, visitor 2065): 38.35 degC in 16.7 degC air, a slow strong wobble and a
    # little sweat, the approach starting 96 ms before the first present sample. An early fit
    # that held the filter's term to a filter's range (so the first sample counted) read the
    # wobble's flattening as a fast approach to a low plateau and passed it early at 36.31; the
    # plateau says 37.77.
    visit = Visit(approach_tau_s=0.3532033738161049, wobble=0.049850509131202814,
                  wobble_hz=0.6124320476129583, sweat_c=0.0886121618159807,
                  sweat_tau_s=1.8555620521023015)  # fmt: skip
    body_c, ambient_c, seed = 38.35310831934556, 16.656431737874257, 750638
    first_s = 0.7707784478157303 / 8
    plateau, t = (
        visitor(body_c, ambient_c, seed, visit, cfg, first_s=first_s)[0][0]
        for cfg in (CFG.model_copy(update={"early_decision": False}), CFG)
    )
    assert plateau.ok and plateau.body_c >= CFG.fever_threshold_c  # a fever, on the plateau
    assert not (t.ok and t.early and t.body_c < CFG.fever_threshold_c), t
