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
* **view check**, before a *normal* verdict only: a view the skin does not fill reads low, so a
  fever seen partly looks normal. A reading below ``normal_min_c``, one that rose and then fell
  (a step back), or one whose settled samples fluctuate beyond the sensor's noise (an edge of
  the view swaying in it) is ``implausible`` (re-measure, come closer) with ``Temperature.doubt``
  saying why; a re-measure after such a doubt must reach the reading seen before (and clear
  ``normal_min_c`` by 0.2 degC: noise alone must not lift a doubted view over it). A view that
  never settles into a stable window (a wobbling arm, a swaying edge in cold air) is doubted the
  same way as soon as the view check's 2 s of it are in (1.5 s on a re-measure), when its
  samples do not fit one approach plus the noise and even their highest 3-sample median reads
  clearly normal (below ``fever_threshold_c - early_margin_c``); anything nearer a fever waits
  for the plateau (or the timeout) as before;
* **falling away**, before a pass only: a stable window whose newest sample lies more than the
  sensor's noise below the window's highest is not passed on yet (an approach never falls: the
  top of a rise cut short by someone cooler taking its place, a step back, or the noise; the
  next samples tell them apart);
* **heading for a fever**, before a pass only: a stable window whose settled samples' line,
  taken at the newest sample and carried on by what an approach still rising at its slope has
  left to climb (slope times ``_APPROACH_TAU_S``), reads a fever is not passed on yet: the
  window's median reads the tail of an approach, flattened by the noise, low;
* a ``SensorFault`` ends the measurement as ``fault`` (``sensor_fault``); no stable reading by
  ``measure_timeout_s`` is ``no_temperature``.

**Early decision** (``early_decision``): most visitors are not feverish and should not wait for
the plateau. While the object is still rising, ``fit_plateau`` fits the approach (a first-order
approach of unknown speed, seen through the sensor's own first-order IIR filter) to the samples
since presence and bounds its plateau: every approach time constant whose fit is statistically
as good as the best one contributes its plateau +- two standard errors. When the *whole* bound,
turned into body temperatures, is plausible and below ``fever_threshold_c - early_margin_c``,
the measurement decides ``ok`` at once with the plateau estimate (``Temperature.early``). A bound
that reaches near the threshold, a poor fit (residuals beyond the sensor's noise, a reading
that falls or wobbles), a rise that has not yet shown its curvature (a bound with no upper end),
a clear bound not yet confirmed by the next sample's fit, a forehead within 5 degC of warm air
or a drifting die all leave the decision to the stable plateau above, so a fever is only ever
decided on a full plateau (and re-measured by the engine).

The fever threshold and the re-measure before a fever deny belong to the policy and engine,
which read ``fever_threshold_c`` and ``remeasure_on_fever`` from the same config.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from math import exp as _exp
from operator import mul
from typing import Literal, NamedTuple

from kiosk.calibration import Calibration, CalibrationStore
from kiosk.config.thermometer import ThermometryConfig
from kiosk.devices import DeviceFault, ThermoReading

TemperatureStatus = Literal["ok", "no_temperature", "implausible", "fault"]
#: The reason of an ``implausible`` reading taken in air the calibration is not trusted in
#: (``Calibration.covers``): no re-measure (the same air), the guard checks by hand.
AIR_OUT_OF_RANGE = "air_out_of_range"

#: The MLX90614's factory IIR setting (config register 0x25 = 0x9FB4: 7.23 Hz bandwidth) as a
#: first-order time constant; a kiosk whose driver sets another bandwidth passes its own.
FACTORY_FILTER_TAU_S = 1.0 / (2 * math.pi * 7.23)
#: Approach time constants the plateau fit tries: a forehead arriving in 0.08 s up to 2.6 s.
#: A bound that still admits the slowest is no bound (the rise has shown no curvature yet).
_TAU_GRID_S = tuple(0.08 * 1.16**k for k in range(24))
#: The thermopile's noise at the factory bandwidth is ~0.06 degC: residuals are never trusted
#: to be smaller than this, however few the samples.
_NOISE_FLOOR_C = 0.06
#: A forehead moving into the thermometer's view approaches its reading with a time constant
#: of about this (the emulator's plain approach; the bench's brisk and slow visitors take 0.2
#: and 0.6 s): a first-order approach still rising at a slope has slope times this to climb.
_APPROACH_TAU_S = 0.35
#: Residuals beyond this (RMS) are not the approach model: a wobble, a step back, a fall.
_POOR_FIT_RMS_C = 0.12
#: 95 % point of chi-square with one degree of freedom: the likelihood-ratio margin.
_CHI2_95 = 3.84
_MIN_FIT_SAMPLES = 5
#: The early fit uses the samples of the first 3 s of presence at most.
_MAX_FIT_S = 3.0
#: An early decision needs the plateau this far above the air (object degC). In warm air the
#: forehead reads close to it, presence shows late in the rise, and a sway or sweat bends the
#: little curve that is left into a plateau that is not there.
_MIN_EARLY_CONTRAST_C = 5.0
#: The widest plateau bound (object degC) an early decision may rest on.
_MAX_BOUND_WIDTH_C = 1.0
#: The view check before a normal verdict looks at the present samples of the latest 2 s.
_VIEW_S = 2.0
#: A re-measure (after a doubted view) needs 1.5 s of present samples: a head's sway is slow.
_VIEW_MIN_S = 1.5
#: A settled reading this far below the highest one seen of the person (over three times the
#: noise of a median of three) is a view lost: a step back, a turned head.
_FELL_C = 0.2
#: 99.9 % points of chi-square for k = 2..29 degrees of freedom, divided by k: residuals of
#: the approach fit (k = n - 3) beyond ``_NOISE_FLOOR_C`` times the root of this are not the
#: sensor's noise but the scene moving (an edge of the view swaying, a wobble).
_CHI2_999_PER_DOF = (6.91, 5.42, 4.62, 4.10, 3.74, 3.47, 3.27, 3.10, 2.96, 2.84, 2.74, 2.66,
                     2.58, 2.51, 2.45, 2.40, 2.35, 2.31, 2.27, 2.23, 2.19, 2.16, 2.13, 2.10,
                     2.08, 2.05, 2.03, 2.01)  # fmt: skip


#: Two plateaus of one forehead that stays in view, re-measured at once, lie within this much
#: (object degC) of each other: the noise of a median, a wobble, hair swaying and sweat moved
#: them 0.3 degC at most on the emulator (tests/test_thermometry.py). A re-measure of a fever
#: further below it is not the forehead that read the fever (see ``fever_stands``).
REMEASURE_AGREES_C = 0.4


#: The sensor die moving faster than this (degC/min over the latest minute) is warm-up or thermal
#: shock: the thermopile's ambient compensation lags, and no reading is decided meanwhile.
DIE_DRIFT_MAX_C_PER_MIN = 0.5
#: The drift is taken over this much of the latest readings (one point a second), at least
#: ``_DIE_DRIFT_MIN_NS`` of them.
_DIE_DRIFT_WINDOW_NS = 60_000_000_000
_DIE_DRIFT_MIN_NS = 10_000_000_000


class DieTrend:
    """How fast the sensor's own temperature (the reading's ambient) moves, over the latest
    minute of every reading (the engine feeds it idle or not). A stable window of 0.6 s cannot
    see a die warming 3 degC/min (0.03 degC), but the compensation is off all the same: the
    measurement waits while ``drifting`` (the driver's health says the same, degraded)."""

    def __init__(self) -> None:
        self._points: deque[tuple[int, float]] = deque()

    def add(self, reading: ThermoReading) -> bool:
        """Take a reading; True when it was kept (at most one a second)."""
        points = self._points
        if not math.isfinite(reading.ambient_c):
            return False
        if points and reading.mono_ns - points[-1][0] < 1_000_000_000:
            return False  # one point a second is plenty for a drift over a minute
        points.append((reading.mono_ns, reading.ambient_c))
        while points and reading.mono_ns - points[0][0] > _DIE_DRIFT_WINDOW_NS:
            points.popleft()
        return True

    def c_per_min(self, now_ns: int) -> float | None:
        """The drift over the latest minute, or None when under 10 s of it is known."""
        points = self._points
        if len(points) < 2 or now_ns - points[-1][0] > _DIE_DRIFT_WINDOW_NS:
            return None
        (t0, a0), (t1, a1) = points[0], points[-1]
        if t1 - t0 < _DIE_DRIFT_MIN_NS:
            return None
        return (a1 - a0) / ((t1 - t0) / 60e9)

    def drifting(self, now_ns: int) -> bool:
        drift = self.c_per_min(now_ns)
        return drift is not None and abs(drift) > DIE_DRIFT_MAX_C_PER_MIN


def samples_in(seconds: float, sample_hz: float) -> int:
    """How many samples ``seconds`` of measuring at ``sample_hz`` hold (at least one)."""
    return max(1, round(seconds * sample_hz))


def _chi2_999_per_dof(dof: int) -> float:
    """The 99.9 % point of chi-square over ``dof`` (2 or more), divided by ``dof``; beyond the
    table (29), the Wilson-Hilferty approximation (within 0.5 % there)."""
    if dof - 2 < len(_CHI2_999_PER_DOF):
        return _CHI2_999_PER_DOF[dof - 2]
    h = 2 / (9 * dof)
    return (1 - h + 3.0902 * math.sqrt(h)) ** 3


def _noise_limit_c(samples: int) -> float:
    """The highest residual RMS of an approach fit to ``samples`` readings (3 parameters) that
    is still the sensor's noise (99.9 %): beyond it the scene moves (a sway, a wobble)."""
    return _NOISE_FLOOR_C * math.sqrt(_chi2_999_per_dof(samples - 3))


@dataclass(frozen=True)
class Temperature:
    """The outcome of one measurement. ``body_c`` is set only for ``ok`` and ``implausible``."""

    status: TemperatureStatus
    body_c: float | None
    object_c: float | None
    ambient_c: float | None
    reason: str | None
    #: Decided from the fitted plateau of the rising curve, before the plateau itself.
    early: bool = False
    #: Why a reading that looked normal was not passed (``implausible``): the view was in doubt
    #: (``"low"``: below ``normal_min_c``; ``"fell"``: the reading fell from a higher one;
    #: ``"unsteady"``: it fluctuates beyond the sensor's noise). Re-measure, come closer.
    #: ``"air"``: the air is outside the calibration's trusted range (``AIR_OUT_OF_RANGE``).
    doubt: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def is_present(reading: ThermoReading, cfg: ThermometryConfig) -> bool:
    """Someone is in view: the object reads warmer than the air by the presence margin."""
    return reading.object_c - reading.ambient_c >= cfg.presence_margin_c


def estimate_body_c(object_c: float, ambient_c: float, calibration: Calibration) -> float:
    """Core body temperature from a skin (object) and an air (ambient) reading; see calibration."""
    return calibration.estimate(object_c, ambient_c)


def fever_stands(fever: Temperature, again: Temperature, cfg: ThermometryConfig) -> bool:
    """Whether a fever stands over ``again``, the re-measure taken to confirm it. A re-measure
    that is no reading (the person walked off, an implausible view twice, a sensor fault)
    clears nothing: the fever stands, and the guard is alarmed about the person who read it.
    A normal reading more than ``REMEASURE_AGREES_C`` (object) below the fever is not that
    forehead read again: someone no warmer took its place with no gap the reading could
    show, or the view was lost (a partial view only reads low); neither says the fever was
    wrong, so it is no pass. A re-measure within it (the fever was the noise near the
    threshold) is judged as it is, and so is a fever read again."""
    if not again.ok or again.body_c is None:
        return True
    if again.body_c >= cfg.fever_threshold_c:
        return False
    if fever.object_c is None or again.object_c is None:
        return False
    return fever.object_c - again.object_c > REMEASURE_AGREES_C


def classify(body_c: float, cfg: ThermometryConfig) -> tuple[TemperatureStatus, str | None]:
    if not math.isfinite(body_c) or not cfg.plausible_min_c <= body_c <= cfg.plausible_max_c:
        return "implausible", "temp_implausible"
    return "ok", None


def _line(readings: list[ThermoReading]) -> tuple[float, float, float]:
    """Least-squares line of the object over time: its slope (degC/s), its value at the newest
    sample and the readings' span (s)."""
    t0 = readings[0].mono_ns
    ts = [(r.mono_ns - t0) / 1e9 for r in readings]
    mean_t = statistics.fmean(ts)
    mean_o = statistics.fmean(r.object_c for r in readings)
    var_t = sum((t - mean_t) ** 2 for t in ts)
    if var_t == 0:
        return 0.0, mean_o, 0.0
    cov = sum((t - mean_t) * (r.object_c - mean_o) for t, r in zip(ts, readings, strict=True))
    slope = cov / var_t
    return slope, mean_o + slope * (ts[-1] - mean_t), ts[-1] - ts[0]


def _rise_over_window(window: deque[ThermoReading]) -> float:
    """Least-squares trend of the object across the window, in degC over the window's span.

    A tight spread alone would accept the slow tail of an approach (a wrist still warming the
    field of view), which reads low: a fever caught early looks normal.
    """
    slope, _, span = _line(list(window))
    return slope * span


@dataclass(frozen=True)
class PlateauFit:
    """Where a rising object reading is heading: ``plateau_c`` within ``low_c..high_c``.

    ``high_c`` is ``inf`` when the samples cannot tell a slow approach from a far plateau.
    ``rms_c`` is the residual of the best fit (degrees of freedom counted); ``rising`` says the
    fitted approach climbs towards the plateau (a falling reading is not an approach).
    """

    plateau_c: float
    low_c: float
    high_c: float
    tau_s: float
    rms_c: float
    #: The best fit's approach amplitude and the filter's own term at the first sample (``A``
    #: and ``B`` of ``_fit_tau``). The filter lags an approach by a fraction of its amplitude;
    #: a first sample that needs a larger filter term is no part of this approach.
    rise_c: float
    lag_c: float

    @property
    def rising(self) -> bool:
        return self.rise_c > 0

    @property
    def lag_fits_the_rise(self) -> bool:
        return abs(self.lag_c) <= abs(self.rise_c)


class _TauFit(NamedTuple):
    """The fit at one approach tau (a tuple: hundreds are made at every reading)."""

    tau_s: float
    rss: float
    plateau_c: float
    plateau_var: float  # (X^T X)^-1 [0][0]: times sigma^2, the plateau's variance
    rise_c: float
    lag_c: float


@dataclass(frozen=True)
class _Samples:
    """What the fit at every tau shares: the samples, the filter's column (``-exp(-t/tau_f)``)
    and the sums of the normal equations that do not depend on tau."""

    ts: list[float]
    ys: list[float]
    filter_tau_s: float
    filter_col: list[float]
    n: float
    sum_f: float
    sum_ff: float
    sum_y: float
    sum_fy: float

    @classmethod
    def of(cls, ts: list[float], ys: list[float], filter_tau_s: float) -> _Samples:
        col = [-math.exp(-t / filter_tau_s) for t in ts]
        return cls(
            ts,
            ys,
            filter_tau_s,
            col,
            float(len(ts)),
            sum(col),
            sum([f * f for f in col]),
            sum(ys),
            sum([f * y for f, y in zip(col, ys, strict=True)]),
        )


def _fit_tau(s: _Samples, tau_s: float) -> _TauFit | None:
    """Least squares of ``y = P - A exp(-t/tau) - B exp(-t/tau_f)`` for one approach tau.

    An exponential approach seen through a first-order filter is exactly this sum: the
    filter's own term (``B``) dies out within a few ``tau_f`` and the approach keeps ``tau``.
    The normal equations' matrix is symmetric: six cofactors of its nine, the inverse
    ``cofactor / det``. Each sum adds the same products in the same order as summing over
    the design matrix's rows ``(1, -exp(-t/tau), -exp(-t/tau_f))`` would (``sum`` over
    ``map``: no list of products is built), so the result is bit for bit that fit. This runs
    for every tau of every fit, at every reading: hundreds of times a reading on a Pi.
    """
    col = [-_exp(-t / tau_s) for t in s.ts]
    n, sum_a, sum_f, sum_ff = s.n, sum(col), s.sum_f, s.sum_ff
    sum_aa, sum_af = sum(map(mul, col, col)), sum(map(mul, col, s.filter_col))
    c00 = sum_aa * sum_ff - sum_af * sum_af
    c01 = sum_f * sum_af - sum_a * sum_ff
    c02 = sum_a * sum_af - sum_f * sum_aa
    c11 = n * sum_ff - sum_f * sum_f
    c12 = sum_f * sum_a - n * sum_af
    c22 = n * sum_aa - sum_a * sum_a
    det = n * c00 + sum_a * c01 + sum_f * c02
    # The largest entry's size (the diagonal's are sums of squares): a singular matrix.
    scale = max(n, sum_aa, sum_ff, abs(sum_a), abs(sum_f), abs(sum_af))
    if abs(det) <= 1e-12 * scale**3:
        return None
    i00, i01, i02 = c00 / det, c01 / det, c02 / det
    i11, i12, i22 = c11 / det, c12 / det, c22 / det
    y0, y1, y2 = s.sum_y, sum(map(mul, col, s.ys)), s.sum_fy
    p = i00 * y0 + i01 * y1 + i02 * y2
    c_a = i01 * y0 + i11 * y1 + i12 * y2
    c_f = i02 * y0 + i12 * y1 + i22 * y2
    rss = sum(
        [
            (y - (p + c_a * a + c_f * f)) ** 2
            for a, f, y in zip(col, s.filter_col, s.ys, strict=True)
        ]
    )
    return _TauFit(tau_s, rss, p, i00, c_a, c_f)


def _fits(samples: _Samples, taus: Iterable[float]) -> list[_TauFit]:
    """The fit at every tau (in order), skipping taus too close to the filter's own."""
    filter_tau_s = samples.filter_tau_s
    return [
        f
        for tau in taus
        if abs(tau - filter_tau_s) > 0.25 * filter_tau_s
        and (f := _fit_tau(samples, tau)) is not None
    ]


def _admitted(fits: list[_TauFit], sigma2: float) -> list[_TauFit]:
    """Fits within the 95 % likelihood-ratio margin of the best (chi-square, 1 dof), by tau."""
    best = min(f.rss for f in fits)
    return sorted((f for f in fits if f.rss <= best + _CHI2_95 * sigma2), key=lambda f: f.tau_s)


def fit_plateau(
    readings: list[ThermoReading], filter_tau_s: float = FACTORY_FILTER_TAU_S
) -> PlateauFit | None:
    """Fit the approach to ``readings`` (one presence, in order) and bound its plateau.

    For every approach time constant on a grid the fit is linear; the best one gives the
    estimate, and every one whose residual sum is within the 95 % likelihood-ratio margin of
    the best (chi-square, one parameter) adds its plateau +- 2 standard errors to the bound.
    ``None`` with fewer than ``_MIN_FIT_SAMPLES`` readings or no solvable fit.
    """
    n = len(readings)
    if n < _MIN_FIT_SAMPLES:
        return None
    t0 = readings[0].mono_ns
    ts = [(r.mono_ns - t0) / 1e9 for r in readings]
    ys = [r.object_c for r in readings]
    samples = _Samples.of(ts, ys, filter_tau_s)
    coarse = _fits(samples, _TAU_GRID_S)
    if not coarse:
        return None
    sigma2 = max(min(f.rss for f in coarse) / (n - 3), _NOISE_FLOOR_C**2)
    # The plateau moves fast with tau: bound it on a fine grid spanning the admitted taus.
    admitted = _admitted(coarse, sigma2)
    lo = max(0, _TAU_GRID_S.index(admitted[0].tau_s) - 1)
    hi = min(len(_TAU_GRID_S) - 1, _TAU_GRID_S.index(admitted[-1].tau_s) + 1)
    steps = math.ceil(math.log(_TAU_GRID_S[hi] / _TAU_GRID_S[lo]) / math.log(1.01))
    fine = _fits(samples, [_TAU_GRID_S[lo] * 1.01**k for k in range(steps + 1)])
    best = min(fine + coarse, key=lambda f: f.rss)
    sigma2 = max(best.rss / (n - 3), _NOISE_FLOOR_C**2)
    # The profile-likelihood interval of the plateau: at each tau the residual sum grows
    # quadratically as the plateau moves off that tau's estimate; every plateau whose sum
    # stays within the margin of the best, at any tau, is in.
    low, high = math.inf, -math.inf
    for f in fine + coarse:
        slack = _CHI2_95 * sigma2 - (f.rss - best.rss)
        if slack >= 0:
            half = math.sqrt(slack * f.plateau_var)
            low, high = min(low, f.plateau_c - half), max(high, f.plateau_c + half)
            if f.tau_s >= _TAU_GRID_S[-1]:
                high = math.inf
    rms = math.sqrt(best.rss / (n - 3))
    return PlateauFit(best.plateau_c, low, high, best.tau_s, rms, best.rise_c, best.lag_c)


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
        *,
        filter_tau_s: float = FACTORY_FILTER_TAU_S,
        seen_object_c: float | None = None,
        die: DieTrend | None = None,
    ) -> None:
        self.cfg = cfg
        #: The die's drift over the latest minute (the engine's): no decision while it drifts.
        self.die = die
        self.filter_tau_s = filter_tau_s
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
        self._max_fit = samples_in(_MAX_FIT_S, cfg.sample_hz)
        self._view_min = samples_in(_VIEW_MIN_S, cfg.sample_hz)
        #: Every present sample since presence began (the early plateau fit's input).
        self._run: list[ThermoReading] = []
        #: The latest present samples (the view check's input) and the highest window median.
        self._recent: deque[ThermoReading] = deque(maxlen=samples_in(_VIEW_S, cfg.sample_hz))
        self._peak_c = -math.inf
        self._first_c: float | None = None
        #: The highest reading an earlier measurement of the same person settled on (a
        #: re-measure after a doubted view): a normal verdict lower than it is a view lost.
        self._seen_c = -math.inf if seen_object_c is None else seen_object_c
        self._last: ThermoReading | None = None
        #: The previous sample's early fit when it was clearly normal (else None).
        self._clear_fit: PlateauFit | None = None

    @property
    def doubted_peak_c(self) -> float | None:
        """After a doubted view, the highest settled object reading of this person so far: what
        the re-measure must reach again (``seen_object_c``). ``None`` after any other result (a
        fever re-measured may well read lower: a wrist out of a warm pocket)."""
        peak = max(self._peak_c, self._seen_c)
        if self.result is None or self.result.doubt is None or peak == -math.inf:
            return None
        return peak

    @property
    def settled_peak_c(self) -> float:
        """The highest settled reading (3-sample median) of this measurement so far."""
        return self._peak_c

    def read_a_fever(self, below_c: float) -> bool:
        """Whether the highest settled reading (3-sample median) of this measurement reads a
        fever and lies more than ``REMEASURE_AGREES_C`` (object) above ``below_c``: a normal
        verdict ``below_c`` is then not the forehead that read it (see ``fever_stands``)."""
        if self._peak_c - below_c <= REMEASURE_AGREES_C or self._last is None:
            return False
        body = estimate_body_c(self._peak_c, self._last.ambient_c, self.calibration)
        return body >= self.cfg.fever_threshold_c

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
            self._run.clear()
            self._recent.clear()
            self._peak_c = -math.inf
            self._first_c = None
            return self.check_timeout(reading.mono_ns)
        if self.presence_mono_ns is None:
            self.presence_mono_ns = reading.mono_ns
        self._window.append(reading)
        if len(self._window) >= 3:
            settled = statistics.median(r.object_c for r in list(self._window)[-3:])
            if self._first_c is None:
                self._first_c = settled
            self._peak_c = max(self._peak_c, settled)
        if len(self._run) < self._max_fit:
            self._run.append(reading)
        self._recent.append(reading)
        if len(self._window) == self.cfg.stable_window and self._stable():
            plateau = self._plateau()
            if plateau is not None:
                return self._decide(plateau, reading.mono_ns)
        early = self._early()
        if early is not None:
            return self._decide(early, reading.mono_ns)
        unsettled = self._unsettled()
        if unsettled is not None:
            return self._decide(unsettled, reading.mono_ns)
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

    def _plateau(self) -> Temperature | None:
        """The decision on a stable window: its median, estimated, checked; ``None``: a normal
        reading not yet seen long enough to tell a still, filled view (keep measuring)."""
        cfg = self.cfg
        obj = statistics.median(r.object_c for r in self._window)
        amb = statistics.median(r.ambient_c for r in self._window)
        body = estimate_body_c(obj, amb, self.calibration)
        status, reason = classify(body, cfg)
        doubt = None
        if not self.calibration.covers(amb):
            # The model says nothing trustworthy at this air temperature: never a pass (or a
            # fever) on a guess. Measuring again in the same air cannot help: the guard.
            status, reason, doubt = "implausible", AIR_OUT_OF_RANGE, "air"
        elif status == "ok" and body < cfg.fever_threshold_c:
            # A view the skin does not fill reads low: a fever seen partly looks normal. A
            # fever reading needs no such check (a partial view only ever reads lower).
            if self._seen_c > -math.inf and len(self._recent) < self._view_min:
                return None  # a re-measure: the view must show it is still and filled
            doubt = self._view_doubt(body, obj)
            if doubt is not None:
                status, reason = "implausible", "temp_implausible"
            elif self._falling_away():
                return None  # not yet: the next samples tell a swap or a step back from noise
            elif self._heading_for_a_fever(amb):
                return None  # not yet: a rise still under way may carry it over the threshold
        return Temperature(
            status, round(body, 2), round(obj, 2), round(amb, 2), reason, doubt=doubt
        )

    def _falling_away(self) -> bool:
        """Whether the window's newest sample lies more than the sensor's noise below the
        window's highest: the reading is leaving the level the window reports.

        An approach never falls, so a stable window whose newest sample fell is the top of a
        rise cut short: someone cooler taking the place of a forehead still rising (no gap:
        the fall from the top of the holder's rise to the newcomer's first samples reads
        flat enough to pass as stable, at the holder's not yet settled reading), a step back,
        an edge of the view swaying out; or the noise. Before a pass the measurement waits
        for the next sample: the noise does not persist, a swap keeps falling (the window
        then spreads, and the reading settles on the newcomer below what the holder read:
        ``fell``)."""
        objects = [r.object_c for r in self._window]
        return objects[-1] < max(objects) - _NOISE_FLOOR_C

    def _heading_for_a_fever(self, ambient_c: float) -> bool:
        """Whether the settled samples may still be climbing to a fever: the least-squares
        line of the latest present samples that lie within ``stable_spread_c`` of each other
        (the stable window and as much before it as has settled), taken at its newest sample
        and carried on by what a first-order approach rising at its slope has still to climb
        (slope times ``_APPROACH_TAU_S``), reads a fever.

        The stable window's median reads the middle of the window, and its trend check lets
        an approach's tail through when the noise flattens it: near the threshold a fever's
        own tail read ~0.2 degC (object) below its plateau, a normal verdict. A plateau that
        has stopped rising heads where it reads (its slope is the noise's, either sign), so a
        clear normal passes as before; only a reading within the noise, plus any rise still
        under way, of the threshold waits for the next sample, whose longer settled run fits
        the line more tightly (or has climbed to the fever)."""
        recent = list(self._recent)
        start, low, high = len(recent) - 1, recent[-1].object_c, recent[-1].object_c
        while start > 0:
            low = min(low, recent[start - 1].object_c)
            high = max(high, recent[start - 1].object_c)
            if high - low > self.cfg.stable_spread_c:
                break
            start -= 1
        slope, newest_c, _ = _line(recent[start:])
        heading = newest_c + max(0.0, slope) * _APPROACH_TAU_S
        return estimate_body_c(heading, ambient_c, self.calibration) >= self.cfg.fever_threshold_c

    def _view_doubt(self, body_c: float, object_c: float) -> str | None:
        """Why a normal-looking reading may be a view the skin did not fill, or ``None``."""
        floor = self.cfg.normal_min_c
        if self._seen_c > -math.inf:
            floor += _FELL_C  # a re-measure: noise alone must not lift a doubted view over it
        if body_c < floor:
            return "low"
        rose = self._first_c is not None and self._peak_c - self._first_c > _FELL_C
        if (rose and self._peak_c - object_c > _FELL_C) or self._seen_c - object_c > _FELL_C:
            # A step back, the head turned: the reading rose higher a moment ago (a reading
            # that only falls is a warm wrist cooling, which the fever re-measure allows).
            return "fell"
        if not self._quiet(list(self._recent), object_c):
            return "unsteady"
        return None

    def _unsettled(self) -> Temperature | None:
        """A view that never settles into a stable window, doubted as soon as that is clear.

        A wobbling arm or a swaying edge in cold air can move the reading by more than
        ``stable_spread_c`` for ever: no stable window forms and the measurement would time
        out. Once the view check's span of present samples is in (1.5 s on a re-measure) and
        they do not fit one approach plus the sensor's noise, the measurement ends
        ``implausible`` (``unsteady``, or ``low`` when even the highest 3-sample median is
        below ``normal_min_c``): re-measure, come closer. Never a pass: a reading whose highest
        3-sample median reads a fever waits for a full plateau as before (a wobble or an edge
        in view only ever lowers the reading).
        """
        cfg = self.cfg
        span = self._view_min if self._seen_c > -math.inf else self._recent.maxlen
        if span is None or len(self._recent) < span:
            return None
        obj = statistics.median(r.object_c for r in self._recent)
        # The settled samples: an approach's rise (more than a degree off) is not yet a view
        # that should have settled, and needs to be out of the way for 1.5 s of samples.
        recent = [r for r in self._recent if abs(r.object_c - obj) <= 1.0]
        if len(recent) < self._view_min:
            return None
        objects = [r.object_c for r in recent]
        amb = statistics.median(r.ambient_c for r in recent)
        if not self.calibration.covers(amb):
            return None
        top = max(statistics.median(objects[i : i + 3]) for i in range(len(objects) - 2))
        fit = fit_plateau(recent, self.filter_tau_s)
        if fit is None or fit.rms_c <= _noise_limit_c(len(recent)):
            return None  # one approach plus the noise: a still view, on its way to a plateau
        if fit.rising:
            top = max(top, fit.plateau_c)  # a tail still climbing: judge where it heads
        body_top = estimate_body_c(top, amb, self.calibration)
        if body_top >= cfg.fever_threshold_c - cfg.early_margin_c:
            return None  # near a fever: the full plateau decides, as before
        body = estimate_body_c(obj, amb, self.calibration)
        doubt = "low" if body_top < cfg.normal_min_c else "unsteady"
        return Temperature(
            "implausible",
            round(body, 2),
            round(obj, 2),
            round(amb, 2),
            "temp_implausible",
            doubt=doubt,
        )

    def _quiet(self, samples: list[ThermoReading], object_c: float) -> bool:
        """The settled samples (within a degree of ``object_c``) are one approach's tail plus
        the sensor's noise: a still, filled view. The early rise is left out (a real approach
        is no exact exponential)."""
        samples = [r for r in samples if abs(r.object_c - object_c) <= 1.0]
        fit = fit_plateau(samples, self.filter_tau_s)
        return fit is not None and fit.rms_c <= _noise_limit_c(len(samples))

    def _early(self) -> Temperature | None:
        """A clearly normal temperature from the rising curve, or ``None`` (keep measuring)."""
        cfg = self.cfg
        clear_before, self._clear_fit = self._clear_fit, None
        if not cfg.early_decision or not _MIN_FIT_SAMPLES <= len(self._run) < self._max_fit:
            return None
        if self._seen_c > -math.inf:
            return None  # a re-measure after a doubted view: the view must show it is filled
        if self._die_drifting():
            return None
        ambients = [r.ambient_c for r in self._run]
        if max(ambients) - min(ambients) > cfg.ambient_spread_max_c:
            return None
        latest = statistics.median(r.object_c for r in self._run[-3:])
        if self._peak_c - latest > 2 * _NOISE_FLOOR_C:
            return None  # an approach never falls: the view is being lost (a step back)
        fit = fit_plateau(self._run, self.filter_tau_s)
        if (
            fit is None
            or not fit.rising
            or not fit.lag_fits_the_rise
            or fit.rms_c > _POOR_FIT_RMS_C
            or fit.high_c - fit.low_c > _MAX_BOUND_WIDTH_C
        ):
            return None
        amb = statistics.median(ambients)
        if not self.calibration.covers(amb) or fit.low_c - amb < _MIN_EARLY_CONTRAST_C:
            return None
        ends = (estimate_body_c(fit.low_c, amb, self.calibration),
                estimate_body_c(fit.high_c, amb, self.calibration))  # fmt: skip
        if (
            min(ends) < max(cfg.plausible_min_c, cfg.normal_min_c)
            or max(ends) >= cfg.fever_threshold_c - cfg.early_margin_c
        ):
            return None
        # One clear fit can be a sway's trough read as curvature: the fit one sample earlier
        # must have been clear too, and the two plateaus must agree.
        self._clear_fit = fit
        if clear_before is None or not fit.low_c <= clear_before.plateau_c <= fit.high_c:
            return None
        body = estimate_body_c(fit.plateau_c, amb, self.calibration)
        return Temperature(
            "ok", round(body, 2), round(fit.plateau_c, 2), round(amb, 2), None, early=True
        )

    def _die_drifting(self) -> bool:
        return (
            self.die is not None
            and self._last is not None
            and self.die.drifting(self._last.mono_ns)
        )

    def _stable(self) -> bool:
        if self._die_drifting():
            return False  # warm-up or thermal shock: wait for the die to settle
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
