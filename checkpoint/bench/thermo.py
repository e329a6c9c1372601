"""``thermo`` bench: time to a stable reading and body-estimate error, on the emulator.

Everything runs in *virtual* time (``FakeClock``) through the real chain: emulator bytes ->
``Mlx90614`` checked reads -> ``Measurement``. ``settle_ms`` is the virtual time from the first
sample that shows presence to the decision, sampling at ``sample_hz`` (so it includes the
person's approach curve and filling the stable window); ``sensor_settle_ms`` is the chip's own
filter settling time (to 1 %) for the IIR setting read from its config register; ``ratio`` is
their quotient; ``approach_settle_ms`` is how long the emulated approach itself takes to
come within 0.1 degC of its plateau (what dominates ``settle_ms``). Timings are medians over
traces and repeats (different noise seeds).

Errors are estimate minus the trace's known body temperature: ``mean_abs_err_c`` and
``max_abs_err_c`` with the default calibration (a kiosk nobody calibrated), and
``calibrated_*`` after a site fit from separate calibration visits, as ``kiosk calibrate``
would do. ``faults_passed_as_temperature`` counts injected faults whose measurement ended
``ok`` anyway (must be 0).
"""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime
from typing import Any

from drivers.mlx90614 import sensor_settle_s
from drivers.mlx90614_emulator import FAULTS, Mlx90614Emulator, skin_reading_c
from drivers.thermometer import FakeMlx90614, build_thermometer
from kiosk.calibration import Calibration, CalibrationPoint
from kiosk.clock import FakeClock
from kiosk.config.thermometer import FakeThermometerConfig, ThermometerSection, ThermometryConfig
from kiosk.deadline import DeviceWorker
from kiosk.devices import DeviceFault, SensorFault
from kiosk.thermometry import Measurement, Temperature

BODIES_C = (36.2, 36.6, 36.9, 37.3, 37.8, 38.5, 39.2)
AMBIENTS_C = (16.0, 22.0, 28.0)
CALIBRATION_VISITS = ((36.5, 15.0), (36.9, 19.0), (37.1, 23.0), (36.7, 26.0), (37.4, 30.0),
                      (36.4, 21.0), (37.0, 17.0), (36.8, 28.0))  # fmt: skip


def _measure(
    body_c: float, ambient_c: float, seed: int, calibration: Calibration, cfg: ThermometryConfig
) -> tuple[Measurement, Temperature | None]:
    clock = FakeClock()
    section = ThermometerSection(driver=FakeThermometerConfig(ambient_c=ambient_c, seed=seed))
    thermo = build_thermometer(section, clock)
    assert isinstance(thermo, FakeMlx90614)
    period = 1.0 / cfg.sample_hz
    for _ in range(4):  # idle samples before the person steps up
        clock.advance(period)
        thermo.read()
    thermo.emulator.person_arrives(body_c)
    m = Measurement(cfg, calibration, clock.monotonic_ns())
    result = None
    while result is None:
        clock.advance(period)
        result = m.add(thermo.read())
    thermo.close()
    return m, result


def _fit_site(cfg: ThermometryConfig) -> Calibration:
    cal = Calibration()
    for i, (body, ambient) in enumerate(CALIBRATION_VISITS):
        _, t = _measure(body, ambient, 1000 + i, Calibration(), cfg)
        if t is None or t.object_c is None or t.ambient_c is None:
            continue
        cal = cal.with_point(
            CalibrationPoint(body, t.object_c, t.ambient_c, datetime.now(UTC).isoformat(), "bench")
        )
    fitted, _ = cal.fitted(datetime.now(UTC))
    return fitted


def _fault_runs(cfg: ThermometryConfig) -> tuple[int, int]:
    passed = 0
    for fault in FAULTS:
        clock = FakeClock()
        thermo = build_thermometer(ThermometerSection(), clock)
        assert isinstance(thermo, FakeMlx90614)
        thermo.emulator.hang_max_s = 1.0
        thermo.emulator.person_arrives(38.6)
        clock.advance(0.2)
        thermo.emulator.inject(fault)
        m = Measurement(cfg, Calibration(), clock.monotonic_ns())
        worker = DeviceWorker("thermometer", 0.2, SensorFault)
        result = None
        while result is None:
            clock.advance(1.0 / cfg.sample_hz)
            try:
                result = m.add(worker.call_sync(thermo.read, deadline_s=0.2))
            except DeviceFault as exc:
                result = m.add_fault(exc, clock.monotonic_ns())
        thermo.emulator.clear_faults()
        worker.stop()
        thermo.close()
        passed += result.status == "ok"
    return len(FAULTS), passed


def run(quick: bool) -> dict[str, Any]:
    cfg = ThermometryConfig()
    seeds = (1,) if quick else (1, 2, 3)
    bodies = BODIES_C[::3] if quick else BODIES_C
    site = _fit_site(cfg)
    settle_ms: list[float] = []
    errors: list[float] = []
    calibrated: list[float] = []
    undecided = 0
    for body in bodies:
        for ambient in AMBIENTS_C:
            for seed in seeds:
                m, t = _measure(body, ambient, seed, Calibration(), cfg)
                if (
                    t is None
                    or t.status != "ok"
                    or t.body_c is None
                    or t.object_c is None
                    or t.ambient_c is None
                    or m.presence_mono_ns is None
                    or m.decided_mono_ns is None
                ):
                    undecided += 1
                    continue
                settle_ms.append((m.decided_mono_ns - m.presence_mono_ns) / 1e6)
                errors.append(abs(t.body_c - body))
                calibrated.append(abs(site.estimate(t.object_c, t.ambient_c) - body))
    probe = build_thermometer(ThermometerSection(), FakeClock())
    assert isinstance(probe, FakeMlx90614)
    sensor_ms = sensor_settle_s(probe.read_config1()) * 1000
    probe.close()
    # How long the emulated approach itself takes to come within 0.1 degC of the plateau.
    approach_ms = statistics.median(
        1000
        * Mlx90614Emulator.approach_tau_s
        * math.log(
            abs(skin_reading_c(b, a) - a - Mlx90614Emulator.background_above_ambient_c) / 0.1
        )
        for b in bodies
        for a in AMBIENTS_C
    )
    settle = statistics.median(settle_ms)
    injected, passed = _fault_runs(cfg)
    return {
        "traces": len(bodies) * len(AMBIENTS_C),
        "repeats": len(seeds),
        "settle_ms": round(settle, 1),
        "sensor_settle_ms": round(sensor_ms, 1),
        "ratio": round(settle / sensor_ms, 2),
        "approach_settle_ms": round(approach_ms, 1),
        "mean_abs_err_c": round(statistics.fmean(errors), 3),
        "max_abs_err_c": round(max(errors), 3),
        "calibrated_mean_abs_err_c": round(statistics.fmean(calibrated), 3),
        "calibrated_max_abs_err_c": round(max(calibrated), 3),
        "undecided": undecided,
        "faults_injected": injected,
        "faults_passed_as_temperature": passed,
    }
