"""From checked sensor readings to one body temperature the policy can trust (pure, no I/O).

A ``Measurement`` is fed readings (and faults) at ``ThermometryConfig.sample_hz`` by the engine
and decides once:

* **presence**: the object is above ambient by ``presence_margin_c`` (a forehead in view);
* **stable**: the last ``stable_window`` present samples spread at most ``stable_spread_c``,
  show no trend beyond half that spread (the tail of an approach reads low), the die
  (ambient) spread at most ``ambient_spread_max_c`` (a drifting die is warm-up or
  thermal shock, when the thermopile reading is off) and the object samples are not all
  bit-identical (a live thermopile is never that quiet; identical words are a frozen chip or
  a replayed transfer). The reading is the window's median, so one odd sample cannot set it;
* **estimate**: ``estimate_body_c`` via the site ``Calibration``;
* **plausible**: outside ``plausible_min_c..plausible_max_c``, or an ambient outside the
  calibration's trusted range, is ``implausible`` with reason ``temp_implausible``
  (re-measure), never a pass and never a fever;
* a ``SensorFault`` ends the measurement as ``fault`` (``sensor_fault``); no stable reading by
  ``measure_timeout_s`` is ``no_temperature``.

The fever threshold and the re-measure before a fever deny belong to the policy and engine,
which read ``fever_threshold_c`` and ``remeasure_on_fever`` from the same config.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Literal

from kiosk.calibration import Calibration, CalibrationStore
from kiosk.config.thermometer import ThermometryConfig
from kiosk.devices import DeviceFault, ThermoReading

TemperatureStatus = Literal["ok", "no_temperature", "implausible", "fault"]


@dataclass(frozen=True)
class Temperature:
    """The outcome of one measurement. ``body_c`` is set only for ``ok`` and ``implausible``."""

    status: TemperatureStatus
    body_c: float | None
    object_c: float | None
    ambient_c: float | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def is_present(reading: ThermoReading, cfg: ThermometryConfig) -> bool:
    """Someone is in view: the object reads warmer than the air by the presence margin."""
    return reading.object_c - reading.ambient_c >= cfg.presence_margin_c


def estimate_body_c(object_c: float, ambient_c: float, calibration: Calibration) -> float:
    """Core body temperature from a skin (object) and an air (ambient) reading; see calibration."""
    return calibration.estimate(object_c, ambient_c)


def classify(body_c: float, cfg: ThermometryConfig) -> tuple[TemperatureStatus, str | None]:
    if not math.isfinite(body_c) or not cfg.plausible_min_c <= body_c <= cfg.plausible_max_c:
        return "implausible", "temp_implausible"
    return "ok", None


def _rise_over_window(window: deque[ThermoReading]) -> float:
    """Least-squares trend of the object across the window, in degC over the window's span.

    A tight spread alone would accept the slow tail of an approach (a wrist still warming the
    field of view), which reads low: a fever caught early looks normal.
    """
    t0 = window[0].mono_ns
    ts = [(r.mono_ns - t0) / 1e9 for r in window]
    mean_t = statistics.fmean(ts)
    mean_o = statistics.fmean(r.object_c for r in window)
    var_t = sum((t - mean_t) ** 2 for t in ts)
    if var_t == 0:
        return 0.0
    slope = sum((t - mean_t) * (r.object_c - mean_o) for t, r in zip(ts, window, strict=True))
    return slope / var_t * (ts[-1] - ts[0])


class Measurement:
    """One person's temperature measurement; each method returns a ``Temperature`` once decided.

    After the decision every further call returns ``None``; ``result`` keeps the decision.
    ``calibration`` may be a ``CalibrationStore`` (the daemon's, reloaded when the file
    changes): it is read once here, so one measurement never mixes two calibrations.
    """

    def __init__(
        self,
        cfg: ThermometryConfig,
        calibration: Calibration | CalibrationStore,
        start_mono_ns: int,
    ) -> None:
        self.cfg = cfg
        if isinstance(calibration, CalibrationStore):
            calibration = calibration.get()
        self.calibration = calibration
        self.start_mono_ns = start_mono_ns
        self.present = False
        self.result: Temperature | None = None
        #: When presence was first seen and when the decision fell (for the bench and logs).
        self.presence_mono_ns: int | None = None
        self.decided_mono_ns: int | None = None
        self.samples = 0
        self._window: deque[ThermoReading] = deque(maxlen=cfg.stable_window)
        self._last: ThermoReading | None = None

    @property
    def decided(self) -> bool:
        return self.result is not None

    def add(self, reading: ThermoReading) -> Temperature | None:
        if self.result is not None:
            return None
        self.samples += 1
        self._last = reading
        if not (math.isfinite(reading.object_c) and math.isfinite(reading.ambient_c)):
            # The driver never hands these out; if one ever arrives it is a fault, not a value.
            return self._decide(
                Temperature("fault", None, None, None, "sensor_fault"), reading.mono_ns
            )
        self.present = is_present(reading, self.cfg)
        if not self.present:
            self._window.clear()
            return self.check_timeout(reading.mono_ns)
        if self.presence_mono_ns is None:
            self.presence_mono_ns = reading.mono_ns
        self._window.append(reading)
        if len(self._window) == self.cfg.stable_window and self._stable():
            obj = statistics.median(r.object_c for r in self._window)
            amb = statistics.median(r.ambient_c for r in self._window)
            body = estimate_body_c(obj, amb, self.calibration)
            status, reason = classify(body, self.cfg)
            if not self.calibration.covers(amb):
                # The model says nothing trustworthy at this air temperature: never a pass
                # (or a fever) on a guess; re-measure, then the guard.
                status, reason = "implausible", "temp_implausible"
            return self._decide(
                Temperature(status, round(body, 2), round(obj, 2), round(amb, 2), reason),
                reading.mono_ns,
            )
        return self.check_timeout(reading.mono_ns)

    def add_fault(self, fault: DeviceFault, mono_ns: int) -> Temperature | None:
        """A failed read ends the measurement: the driver has already retried it."""
        if self.result is not None:
            return None
        obj = self._last.object_c if self._last else None
        amb = self._last.ambient_c if self._last else None
        return self._decide(Temperature("fault", None, obj, amb, "sensor_fault"), mono_ns)

    def check_timeout(self, mono_ns: int) -> Temperature | None:
        if self.result is not None:
            return None
        if mono_ns - self.start_mono_ns < self.cfg.measure_timeout_s * 1e9:
            return None
        obj = self._last.object_c if self._last else None
        amb = self._last.ambient_c if self._last else None
        return self._decide(
            Temperature("no_temperature", None, obj, amb, "no_temperature"), mono_ns
        )

    def _stable(self) -> bool:
        objects = [r.object_c for r in self._window]
        ambients = [r.ambient_c for r in self._window]
        if max(objects) - min(objects) > self.cfg.stable_spread_c:
            return False
        if max(ambients) - min(ambients) > self.cfg.ambient_spread_max_c:
            return False
        if len(set(objects)) == 1:
            return False
        return abs(_rise_over_window(self._window)) <= self.cfg.stable_spread_c / 2

    def _decide(self, result: Temperature, mono_ns: int) -> Temperature:
        self.result = result
        self.decided_mono_ns = mono_ns
        return result
