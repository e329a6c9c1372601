"""Per-site body-temperature calibration: from what the sensor reads to what a clinician measures.

Model (documented in ``docs/thermometer.md``)::

    d      = object_c - ambient_c                     # how far the skin is above the air
    body_c = object_c + offset_c + gain * d + curve * d**2

Skin sits between core and air, and the colder the air the further below the core it sits;
the gap ``body - skin`` therefore grows with ``d``. ``offset_c`` absorbs skin emissivity,
distance and the sensor's own bias.

The defaults are a rough wrist model (the kiosk asks for a wrist) so a kiosk works with no
calibration file, trusted only between 15 and 35 degC of air; a fitted model is trusted
within ``AMBIENT_MARGIN_C`` of the ambients its pairs were taken at. Outside that range the
measurement is ``implausible`` (re-measure, then the guard), never a guess.

A site records clinical-thermometer readings next to the kiosk's (``kiosk calibrate add`` or
the guard screen, both via ``record_clinical_pair``) and fits its own correction
(``kiosk calibrate fit``). The fit uses only as many terms as the pairs support: one pair fits
the offset; three spread over >= 2 degC of ``d`` add the gain; six spread over >= 6 degC add
the curve; terms not fitted keep their defaults. A pair that disagrees with the fit by more
than ``OUTLIER_C`` stops the fit and is named, because one mistyped reading must not shift
every later decision.

Stored as JSON in the data dir (``calibration.json``), written atomically. No personal data.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.files import UnreadableFile, read_bounded, write_atomic

log = logging.getLogger(__name__)

FILE_NAME = "calibration.json"
FORMAT_VERSION = 1
DEFAULT_OFFSET_C = 0.25
DEFAULT_GAIN = 0.12
DEFAULT_CURVE = 0.015
#: Air temperatures the default model is trusted in: below ~15 degC a wrist is too cold to say
#: much about the core, and the kiosk should not pretend otherwise.
DEFAULT_AMBIENT_RANGE_C = (15.0, 35.0)
#: A fitted model is trusted this far beyond the ambients its pairs were taken at.
AMBIENT_MARGIN_C = 5.0
CLINICAL_RANGE_C = (34.0, 43.0)
OBJECT_RANGE_C = (25.0, 43.0)
AMBIENT_RANGE_C = (-20.0, 50.0)
MAX_POINTS = 1000
#: The calibration file is read no further than this (MAX_POINTS pairs take ~200 kB).
MAX_CALIBRATION_BYTES = 1024 * 1024
OUTLIER_C = 1.0
#: Bounds of a physically sensible fit; outside them the pairs are wrong, not the skin.
OFFSET_BOUNDS_C = (-5.0, 5.0)
GAIN_BOUNDS = (-0.2, 0.6)
CURVE_BOUNDS = (-0.05, 0.05)


class CalibrationError(ValueError):
    """Bad pair, unusable fit or unreadable file; the message says what to do."""


class CorruptCalibration(CalibrationError):
    """The file was read but is not a calibration (cut off mid-write, edited by hand)."""


@dataclass(frozen=True)
class CalibrationPoint:
    """One clinical reading taken next to a kiosk reading of the same person."""

    clinical_c: float
    object_c: float
    ambient_c: float
    recorded_at: str
    source: str = "cli"


@dataclass(frozen=True)
class FitReport:
    terms: tuple[str, ...]
    points: int
    rms_c: float
    max_abs_c: float
    worst_index: int | None


@dataclass(frozen=True)
class Calibration:
    offset_c: float = DEFAULT_OFFSET_C
    gain: float = DEFAULT_GAIN
    curve: float = DEFAULT_CURVE
    fitted_at: str | None = None
    fit_terms: tuple[str, ...] = ()
    ambient_min_c: float = DEFAULT_AMBIENT_RANGE_C[0]
    ambient_max_c: float = DEFAULT_AMBIENT_RANGE_C[1]
    points: tuple[CalibrationPoint, ...] = field(default=())

    @property
    def is_default(self) -> bool:
        return self.fitted_at is None

    def covers(self, ambient_c: float) -> bool:
        """Whether the model is trusted at this air temperature (outside: re-measure)."""
        return self.ambient_min_c <= ambient_c <= self.ambient_max_c

    def estimate(self, object_c: float, ambient_c: float) -> float:
        d = object_c - ambient_c
        return object_c + self.offset_c + self.gain * d + self.curve * d * d

    def residuals(self) -> list[float]:
        """Clinical minus estimate for every recorded pair, in order."""
        return [p.clinical_c - self.estimate(p.object_c, p.ambient_c) for p in self.points]

    # -- pairs ---------------------------------------------------------------------------

    def with_point(self, point: CalibrationPoint) -> Calibration:
        validate_pair(point.clinical_c, point.object_c, point.ambient_c)
        if len(self.points) >= MAX_POINTS:
            raise CalibrationError(
                f"{MAX_POINTS} pairs stored already; remove old ones (kiosk calibrate remove)"
            )
        return replace(self, points=(*self.points, point))

    def without_point(self, index: int) -> Calibration:
        if not 1 <= index <= len(self.points):
            raise CalibrationError(f"no pair number {index} (there are {len(self.points)})")
        pts = list(self.points)
        del pts[index - 1]
        return replace(self, points=tuple(pts))

    # -- fit -----------------------------------------------------------------------------

    def fitted(self, now: datetime) -> tuple[Calibration, FitReport]:
        """A new calibration fitted to the recorded pairs; raises ``CalibrationError``."""
        if not self.points:
            raise CalibrationError("no pairs recorded yet (kiosk calibrate add ...)")
        obj = [p.object_c for p in self.points]
        amb = [p.ambient_c for p in self.points]
        d = [o - a for o, a in zip(obj, amb, strict=True)]
        y = [p.clinical_c - p.object_c for p in self.points]
        spread = max(d) - min(d)
        n = len(self.points)
        if n >= 6 and spread >= 6.0:
            terms: tuple[str, ...] = ("offset", "gain", "curve")
        elif n >= 3 and spread >= 2.0:
            terms = ("offset", "gain")
        else:
            terms = ("offset",)
        design = [[1.0, di, di * di][: len(terms)] for di in d]
        # Terms not fitted keep the default: fewer pairs must not invent an ambient trend.
        target = [
            yi
            - ("gain" not in terms) * DEFAULT_GAIN * di
            - ("curve" not in terms) * DEFAULT_CURVE * di * di
            for yi, di in zip(y, d, strict=True)
        ]
        coef = least_squares(design, target)
        values = dict(zip(terms, (float(c) for c in coef), strict=True))
        offset = values.get("offset", DEFAULT_OFFSET_C)
        gain = values.get("gain", DEFAULT_GAIN)
        curve = values.get("curve", DEFAULT_CURVE)
        for name, value, (low, high) in (
            ("offset", offset, OFFSET_BOUNDS_C),
            ("gain", gain, GAIN_BOUNDS),
            ("curve", curve, CURVE_BOUNDS),
        ):
            if not low <= value <= high:
                raise CalibrationError(
                    f"fitted {name} {value:.3f} is outside {low:g}..{high:g}: the pairs are not"
                    " consistent; check them (kiosk calibrate show)"
                )
        result = replace(
            self,
            offset_c=round(offset, 4),
            gain=round(gain, 5),
            curve=round(curve, 6),
            fitted_at=now.isoformat(),
            fit_terms=terms,
            ambient_min_c=round(min(amb) - AMBIENT_MARGIN_C, 2),
            ambient_max_c=round(max(amb) + AMBIENT_MARGIN_C, 2),
        )
        res = list(result.residuals())
        worst = max(range(n), key=lambda i: abs(res[i]))
        report = FitReport(
            terms=terms,
            points=n,
            rms_c=round(math.sqrt(math.fsum(r * r for r in res) / n), 3),
            max_abs_c=round(float(abs(res[worst])), 3),
            worst_index=worst + 1,
        )
        if report.max_abs_c > OUTLIER_C:
            raise CalibrationError(
                f"pair {worst + 1} is {res[worst]:+.2f} degC off the fit (limit {OUTLIER_C:g});"
                f" re-take it or remove it (kiosk calibrate remove {worst + 1})"
            )
        return result, report

    def reset_model(self) -> Calibration:
        """Back to the default model, keeping the recorded pairs."""
        return Calibration(points=self.points)

    # -- persistence ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "model": {
                "offset_c": self.offset_c,
                "gain": self.gain,
                "curve": self.curve,
                "fitted_at": self.fitted_at,
                "fit_terms": list(self.fit_terms),
                "ambient_min_c": self.ambient_min_c,
                "ambient_max_c": self.ambient_max_c,
            },
            "points": [asdict(p) for p in self.points],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise ValueError(f"expected an object with version {FORMAT_VERSION}")
        model = data["model"]
        cal = cls(
            offset_c=_finite(model["offset_c"]),
            gain=_finite(model["gain"]),
            curve=_finite(model["curve"]),
            fitted_at=model["fitted_at"] if model["fitted_at"] is None else str(model["fitted_at"]),
            fit_terms=tuple(str(t) for t in model["fit_terms"]),
            ambient_min_c=_finite(model.get("ambient_min_c", DEFAULT_AMBIENT_RANGE_C[0])),
            ambient_max_c=_finite(model.get("ambient_max_c", DEFAULT_AMBIENT_RANGE_C[1])),
            points=tuple(
                CalibrationPoint(
                    clinical_c=_finite(p["clinical_c"]),
                    object_c=_finite(p["object_c"]),
                    ambient_c=_finite(p["ambient_c"]),
                    recorded_at=str(p["recorded_at"]),
                    source=str(p.get("source", "cli")),
                )
                for p in data["points"]
            ),
        )
        for low_high, value, name in (
            (OFFSET_BOUNDS_C, cal.offset_c, "offset_c"),
            (GAIN_BOUNDS, cal.gain, "gain"),
            (CURVE_BOUNDS, cal.curve, "curve"),
        ):
            if not low_high[0] <= value <= low_high[1]:
                raise ValueError(f"{name} {value} out of bounds")
        if not cal.ambient_min_c < cal.ambient_max_c:
            raise ValueError("ambient range is empty")
        return cal

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """The stored calibration; the default when the file does not exist."""
        path = Path(path)
        try:
            raw = read_bounded(path, MAX_CALIBRATION_BYTES)
        except UnreadableFile as exc:
            if exc.why == "missing":
                return cls()
            raise CalibrationError(f"calibration file {path}: {exc}") from None
        try:
            # utf-8-sig: the byte order mark a Windows editor saves ("UTF-8 with BOM") is not
            # text, as in the config; json would call the file corrupt.
            return cls.from_dict(json.loads(raw.decode("utf-8-sig")))
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else exc
            raise CorruptCalibration(
                f"calibration file {path} is corrupt ({why}); fix it, or put the default model"
                " back with `kiosk calibrate reset --yes` (the file is kept beside it)"
            ) from None

    def save(self, path: str | Path) -> None:
        """Write atomically (temp file, fsync, rename, fsync dir): a power cut leaves old or new."""
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        write_atomic(path, text.encode("utf-8"))


def _finite(value: Any) -> float:
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits: JSON holds it, a float cannot
        raise ValueError("a number too large") from None
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


@contextmanager
def _suppress_oserror() -> Iterator[None]:
    try:
        yield
    except OSError:
        pass


def validate_pair(clinical_c: float, object_c: float, ambient_c: float) -> None:
    for name, value, (low, high) in (
        ("clinical", clinical_c, CLINICAL_RANGE_C),
        ("object", object_c, OBJECT_RANGE_C),
        ("ambient", ambient_c, AMBIENT_RANGE_C),
    ):
        if not (isinstance(value, int | float) and math.isfinite(value) and low <= value <= high):
            raise CalibrationError(f"{name} reading {value} degC is outside {low:g}..{high:g}")
    if object_c <= ambient_c:
        raise CalibrationError(
            "object reading is not above ambient: the sensor did not see the person"
        )


def default_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / FILE_NAME


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise read-modify-write between the CLI and the daemon (guard screen)."""
    lock_path = path.with_name(f".{path.name}.lock")
    with open(lock_path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def record_clinical_pair(
    path: str | Path,
    clinical_c: float,
    object_c: float,
    ambient_c: float,
    *,
    now: datetime,
    source: str = "guard",
    record: Callable[[], None] | None = None,
) -> Calibration:
    """Append one clinical-vs-kiosk pair to the file and return the updated calibration.

    Called by ``kiosk calibrate add`` and by the guard's fever confirmation. The model is not
    refitted here: a fit is a deliberate step (``kiosk calibrate fit``) with its own checks.

    ``record()`` (the console's audit row of the point) is called once the file is saved,
    under the file lock; if it raises, the file is put back as it was (``_save_recorded``)
    and the error is the caller's: no point stands without its row.
    """
    validate_pair(clinical_c, object_c, ambient_c)
    path = Path(path)
    with _file_lock(path):
        cal = Calibration.load(path).with_point(
            CalibrationPoint(
                clinical_c=round(float(clinical_c), 2),
                object_c=round(float(object_c), 2),
                ambient_c=round(float(ambient_c), 2),
                recorded_at=now.isoformat(),
                source=source,
            )
        )
        _save_recorded(cal, path, record)
    return cal


def _save_recorded(cal: Calibration, path: Path, record: Callable[[], None] | None) -> None:
    """Save ``cal`` to ``path`` (under its lock), then ``record()`` the change. If ``record``
    raises, the previous file is put back: it was kept aside as a hard link, so putting it
    back is a rename and needs no free space (a full card is the likely failure). A crash
    between the save and the record's commit is the one window left (a rename and a commit
    apart). A file that did not exist is removed again."""
    if record is None:
        cal.save(path)
        return
    aside = path.with_name(f".{path.name}.before")
    with _suppress_oserror():
        os.unlink(aside)  # left by a crash in that window: the saved file stands
    existed = path.exists()
    if existed:
        os.link(path, aside)
    try:
        cal.save(path)
        record()
    except BaseException:
        if existed:
            os.replace(aside, path)
        else:
            with _suppress_oserror():
                os.unlink(path)
        raise
    if existed:
        with _suppress_oserror():
            os.unlink(aside)


def fit_file(path: str | Path, now: datetime) -> tuple[Calibration, FitReport]:
    """Fit the stored pairs and store the new model (the file is untouched on error)."""
    path = Path(path)
    with _file_lock(path):
        cal, report = Calibration.load(path).fitted(now)
        cal.save(path)
    return cal, report


def update_file(path: str | Path, change: Callable[[Calibration], Calibration]) -> Calibration:
    """Apply ``change(cal) -> cal`` to the stored calibration under the file lock."""
    path = Path(path)
    with _file_lock(path):
        cal = change(Calibration.load(path))
        cal.save(path)
    return cal


def reset_file(path: str | Path, now: datetime) -> tuple[Calibration, Path | None]:
    """Back to the default model, keeping the recorded pairs. A corrupt file (its pairs cannot
    be read) is renamed aside, ``calibration.json.corrupt-<UTC time>``, and the default written
    in its place: the way back needs no hand edit. Returns the new calibration and where the
    corrupt file went (None when it was not corrupt). A file that cannot be opened at all is
    still an error (a permission, a folder in its place: not for a reset to move)."""
    path = Path(path)
    with _file_lock(path):
        try:
            cal, aside = Calibration.load(path).reset_model(), None
        except CorruptCalibration:
            cal = Calibration()
            aside = path.with_name(f"{path.name}.corrupt-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}")
            os.replace(path, aside)
        cal.save(path)
    return cal, aside


class CalibrationStore:
    """The daemon's view of the calibration file, reloaded when the file changes.

    A corrupt file keeps the last good calibration in use and is reported by ``problem`` (in
    health and on the guard's Devices page, and logged once), so a bad edit or a card that
    damaged the file cannot silently put the kiosk back on defaults mid-shift or at the next
    start.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._current = Calibration()
        self.problem: str | None = None
        self.get()

    def covers(self, ambient_c: float) -> bool:
        """Whether the model is trusted at this air temperature (outside: re-measure)."""
        return self.get().covers(ambient_c)

    def estimate(self, object_c: float, ambient_c: float) -> float:
        return self.get().estimate(object_c, ambient_c)

    def get(self) -> Calibration:
        with self._lock:
            try:
                st = self.path.stat()
                stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                stamp = None
            if stamp != self._stamp:
                try:
                    self._current = Calibration.load(self.path)
                    self.problem = None
                except CalibrationError as exc:
                    if self.problem != str(exc):  # once per problem, not at every read
                        log.error("calibration not re-read, the one in use stays: %s", exc)
                    self.problem = str(exc)
                self._stamp = stamp
            return self._current


@dataclass(frozen=True)
class FixedCalibration:
    """One calibration that never changes (a kiosk with no file of its own, tests, replay): the
    ``kiosk.ports.CalibrationSource`` for a single value."""

    calibration: Calibration = field(default_factory=Calibration)

    def get(self) -> Calibration:
        return self.calibration


def least_squares(design: list[list[float]], target: list[float]) -> list[float]:
    """Coefficients minimising ``|design @ c - target|`` (at most three unknowns here), from the
    normal equations by Gaussian elimination with partial pivoting; pure Python so the core
    needs no numpy. Raises ``CalibrationError`` when the pairs cannot determine the terms."""
    k = len(design[0])
    normal = [
        [math.fsum(row[i] * row[j] for row in design) for j in range(k)]
        + [math.fsum(row[i] * t for row, t in zip(design, target, strict=True))]
        for i in range(k)
    ]
    for col in range(k):
        pivot = max(range(col, k), key=lambda r: abs(normal[r][col]))
        if abs(normal[pivot][col]) < 1e-12:
            raise CalibrationError("the pairs do not determine a fit; record more varied pairs")
        normal[col], normal[pivot] = normal[pivot], normal[col]
        for r in range(k):
            if r != col:
                factor = normal[r][col] / normal[col][col]
                normal[r] = [a - factor * b for a, b in zip(normal[r], normal[col], strict=True)]
    return [normal[i][k] / normal[i][i] for i in range(k)]
