"""The code-reading pipeline: frames (or serial lines) in, hygiene-checked ``CodeRead`` out.

Pure logic given a decoder and the clock: no threads, no I/O. The threaded camera reader,
``kiosk scan``, the replay engine and the bench all call the same ``FramePipeline.process``.

Per frame:

1. **Change gate.** Nobody at the gate means an unchanging scene; decoding it 15 times a
   second would keep a Pi 4 core busy for nothing. A 1/16 thumbnail (strided green channel,
   then area-averaged, which averages sensor noise away) is compared with the one from the
   last decoded frame (mean absolute difference);
   below ``change_threshold`` the frame is skipped, except that a decode is forced every
   ``forced_decode_s`` so a code held perfectly still is still read.
2. **Grayscale once**, only for frames that get decoded; decoder and second pass share it.
3. **Decode**, fast settings on the full frame.
4. **Second pass** only where a code is likely (a compact, strongly textured, square-ish blob
   at half scale) and the fast pass found nothing: the blob is cropped, contrast-stretched,
   upscaled and sharpened, then decoded with the decoder's hard settings, which include
   trying the inverted image (a light-on-dark, "dark mode" phone screen): the inversion
   doubles a decode's cost, so it is paid only here, on a small crop that likely holds a
   code, never on every full frame. Cheap because the crop is small and empty frames
   rarely have such a blob.
5. **Hygiene**: only UTF-8 text without control characters and within ``max_payload_chars``
   reaches the engine; everything else is a ``Rejection`` with a reason, never an exception.
6. **Hold-off**: the same text seen again within ``holdoff_s`` of its last sighting is not
   re-submitted (a pass held in front of the camera is one passage, not fifteen a second).

Hygiene, hold-off and the serial scanners' line handling live in ``drivers.codes`` (no
OpenCV, so a serial-scanner gate never loads it); they are importable from here too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import cv2
import numpy as np

from drivers.codes import (  # noqa: F401 - hygiene and serial lines, long imported from here
    CONTROL_CATEGORIES,
    HoldOff,
    PipelineStats,
    Rejection,
    SerialLineAssembler,
    SerialLinePipeline,
    check_payload,
)
from drivers.decoders import Decoder, RawCode
from kiosk.clock import Clock
from kiosk.config.readers import DecoderConfig
from kiosk.devices import CodeRead
from kiosk.firsts import firsts

#: The change gate looks at every 4th pixel of the green channel (a free strided view; green
#: carries most of the luminance), then averages 4x4 of those: 1/16 of the frame per side.
GATE_STRIDE = 4
GATE_AREA = 4
#: The code-likely detector works at half resolution: a version-8 pass at arm's length has
#: modules of 2-3 px, which a quarter-scale image blurs into flat grey.
DETECT_SCALE = 2
#: A detector cell is 4x4 half-scale pixels; a region counts when most of it is edge.
_DETECT_CELL = 4
_DETECT_DENSITY = 0.55
#: After a code-likely frame, decode every frame for this long (someone is presenting).
LIKELY_KEEP_NS = 1_000_000_000


@dataclass
class FrameResult:
    """Everything ``process`` did with one frame (the bench and tests read this)."""

    codes: list[CodeRead] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    decoded: bool = False  # a decode ran (not gated)
    second_pass: bool = False
    likely: bool = False
    held: int = 0  # texts suppressed by the hold-off
    decode_ms: float = 0.0


class FramePipeline:
    """Frames in, ``CodeRead``s out. Not thread-safe: one pipeline per frame source."""

    def __init__(
        self,
        decoder: Decoder,
        cfg: DecoderConfig,
        clock: Clock,
        *,
        source: str = "camera",
    ) -> None:
        self.decoder = decoder
        self.cfg = cfg
        self.source = source
        self._clock = clock
        self._holdoff = HoldOff(cfg.holdoff_s)
        self._rejected_holdoff = HoldOff(cfg.holdoff_s)
        self._forced_ns = int(cfg.forced_decode_s * 1e9)
        self._ref_thumb: np.ndarray | None = None
        self._last_decode_ns: int | None = None
        self._last_texts: tuple[str, ...] = ()
        self._likely_until_ns = 0
        self.stats = PipelineStats()

    def reset(self) -> None:
        """Forget the gate reference and the hold-off (a new scene, e.g. each scanned file)."""
        self._ref_thumb = None
        self._last_decode_ns = None
        self._last_texts = ()
        self._likely_until_ns = 0
        self._holdoff = HoldOff(self.cfg.holdoff_s)
        self._rejected_holdoff = HoldOff(self.cfg.holdoff_s)

    def process(self, frame: np.ndarray, mono_ns: int) -> list[CodeRead]:
        """Accepted, de-duplicated codes in this frame, stamped with the frame's time."""
        return self.process_detailed(frame, mono_ns).codes

    def process_detailed(self, frame: np.ndarray, mono_ns: int) -> FrameResult:
        result = FrameResult()
        self.stats.frames += 1
        thumb = gate_thumbnail(frame)
        if thumb is None:
            self._reject(result, Rejection("bad_frame", self.source, mono_ns))
            return result
        if not self._should_decode(thumb, mono_ns):
            self._holdoff.touch(self._last_texts, mono_ns)
            return result

        started_ns = self._clock.monotonic_ns()
        result.decoded = True
        self.stats.decodes += 1
        self._ref_thumb = thumb
        self._last_decode_ns = mono_ns
        gray = to_gray(frame)
        if gray is None:  # e.g. a 2-channel array the gate could still sample
            self._reject(result, Rejection("bad_frame", self.source, mono_ns))
            return result
        raws = self.decoder.decode(gray)
        if not raws and self.cfg.second_pass:
            box = find_code_region(gray)
            if box is not None:
                result.likely = True
                result.second_pass = True
                self.stats.second_passes += 1
                self._likely_until_ns = mono_ns + LIKELY_KEEP_NS
                raws = self._second_pass(gray, box)
        # On the injected clock: real milliseconds in the daemon, 0 in virtual-time replay.
        result.decode_ms = (self._clock.monotonic_ns() - started_ns) / 1e6
        if raws:
            self._likely_until_ns = mono_ns + LIKELY_KEEP_NS

        texts: list[str] = []
        for raw in firsts(raws, lambda r: r.data):
            text, reason = check_payload(raw.data, self.cfg.max_payload_chars)
            if text is None:
                # A hostile code held up is reported once per hold-off, not 15 times a second.
                key = hashlib.blake2b(raw.data, digest_size=8).hexdigest()
                if self._rejected_holdoff.admit(key, mono_ns):
                    rejection = Rejection(reason or "?", self.source, mono_ns, len(raw.data))
                    self._reject(result, rejection)
                continue
            texts.append(text)
            if self._holdoff.admit(text, mono_ns):
                result.codes.append(CodeRead(text, self.source, mono_ns, result.decode_ms))
            else:
                result.held += 1
        self._last_texts = tuple(texts)
        self.stats.codes += len(result.codes)
        return result

    def _should_decode(self, thumb: np.ndarray, mono_ns: int) -> bool:
        if self._ref_thumb is None or self._last_decode_ns is None:
            return True
        if self._ref_thumb.shape != thumb.shape:
            return True
        if mono_ns - self._last_decode_ns >= self._forced_ns:
            return True
        if mono_ns < self._likely_until_ns:
            return True
        diff = cv2.absdiff(thumb, self._ref_thumb)
        return float(cv2.mean(diff)[0]) >= self.cfg.change_threshold

    def _second_pass(self, gray: np.ndarray, box: tuple[int, int, int, int]) -> list[RawCode]:
        """Decode prepared crops of the likely region, cheapest-and-best first.

        Dim light and glare squeeze a code into a few grey levels (stretch them); small or
        blurred modules need upscaling and an unsharp mask to get their edges back; uneven
        light is what a local mean threshold is for. The order and the variants come from
        which ones recovered the most bench frames per millisecond."""
        x0, y0, x1, y1 = box
        crop = cv2.normalize(gray[y0:y1, x0:x1], None, 0, 255, cv2.NORM_MINMAX)
        side = max(crop.shape)
        for factor, sigma, threshold in ((2.0, 4.0, False), (1.5, 1.5, False), (1.5, 0, True)):
            factor = min(factor, max(1.0, 900 / side))
            up = cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
            if threshold:
                block = int(12 * factor) | 1
                img = cv2.adaptiveThreshold(
                    up, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, 2
                )
            else:
                img = cv2.addWeighted(up, 2.0, cv2.GaussianBlur(up, (0, 0), sigma), -1.0, 0)
            raws = self.decoder.decode(img, hard=True)
            if raws:
                return raws
        # Last, the crop as the camera saw it: stretching a dim, light-on-dark screen can
        # clip what the decoder's own binarizer (and its inversion) would still separate.
        return self.decoder.decode(np.ascontiguousarray(gray[y0:y1, x0:x1]), hard=True)

    def _reject(self, result: FrameResult, rejection: Rejection) -> None:
        result.rejected.append(rejection)
        self.stats.rejected += 1
        self.stats.last_rejection = rejection.reason


def to_gray(frame: object) -> np.ndarray | None:
    """8-bit gray from a BGR, BGRA or gray uint8 frame; ``None`` if it is not an image."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.size == 0:
        return None
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[..., 0]
    return None


def gate_thumbnail(frame: object) -> np.ndarray | None:
    """The change gate's 1/16-scale image, or None if ``frame`` is not an image.

    Built from a strided view without converting the whole frame to gray: on an idle scene
    this is all the work done per frame (about 10 us instead of a 300 us decode)."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.size == 0:
        return None
    if frame.ndim == 3 and frame.shape[2] in (3, 4):
        view = frame[::GATE_STRIDE, ::GATE_STRIDE, 1]
    elif frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        view = frame[::GATE_STRIDE, ::GATE_STRIDE] if frame.ndim == 2 else frame[::4, ::4, 0]
    else:
        return None
    h, w = view.shape
    size = (max(w // GATE_AREA, 1), max(h // GATE_AREA, 1))
    return cv2.resize(np.ascontiguousarray(view), size, interpolation=cv2.INTER_AREA)


_KERNEL3 = np.ones((3, 3), np.uint8)


def find_code_region(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """A crop box ``(x0, y0, x1, y1)`` in ``gray`` pixels where a QR code is likely, or None.

    A QR code is a compact patch where nearly every pixel sits on a strong edge; walls,
    doors, faces and clothes have edges only along lines. So: edge map at half scale, edge
    density per cell, the densest cell's connected dense region, which must be a filled,
    roughly square blob. About 0.1 ms; no connected-components pass over the whole image
    (OpenCV's is ten times slower at this size)."""
    h, w = gray.shape
    half = cv2.resize(
        gray, (max(w // DETECT_SCALE, 1), max(h // DETECT_SCALE, 1)), interpolation=cv2.INTER_AREA
    )
    grad = cv2.morphologyEx(half, cv2.MORPH_GRADIENT, _KERNEL3)
    # Dim scenes have weak edges: the threshold follows the scene's contrast.
    _, std = cv2.meanStdDev(half)
    thresh = max(10.0, 0.5 * float(std[0][0]))
    edges = np.multiply(grad > thresh, 255, dtype=np.uint8)
    hh, hw = edges.shape
    if hh < 3 * _DETECT_CELL or hw < 3 * _DETECT_CELL:
        return None
    cells = cv2.resize(
        edges, (hw // _DETECT_CELL, hh // _DETECT_CELL), interpolation=cv2.INTER_AREA
    )
    cells = cv2.blur(cells, (3, 3))
    _, peak, _, loc = cv2.minMaxLoc(cells)
    if peak < _DETECT_DENSITY * 255:
        return None
    mask = np.zeros((cells.shape[0] + 2, cells.shape[1] + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (255 << 8)
    low = max(int(peak - 0.8 * _DETECT_DENSITY * 255), 0)
    _, _, _, (x, y, rw, rh) = cv2.floodFill(cells, mask, loc, 0, (low,), (255,), flags)
    if rw < 3 or rh < 3 or max(rw, rh) > 3 * min(rw, rh):
        return None
    if np.count_nonzero(mask[1 + y : 1 + y + rh, 1 + x : 1 + x + rw]) < 0.4 * rw * rh:
        return None
    f = _DETECT_CELL * DETECT_SCALE
    m = max(rw, rh) // 5 + 1
    return (
        max(0, (x - m) * f),
        max(0, (y - m) * f),
        min(w, (x + rw + m) * f),
        min(h, (y + rh + m) * f),
    )
