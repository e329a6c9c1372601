"""A fake camera that plays synthesised scenes, image files or nothing, and can be told to fail.

The frames are meant to look like what a cheap USB/CSI camera at a gate actually sees, because
that is where decoding goes wrong: a QR code (rendered with segno, ECC Q, the size of a signed
pass) on a phone screen held at an angle, or printed on a paper card, with perspective, lens
blur, sensor noise, glare from the screen or a lamp, and dim evening light. Every scene comes
from a seed, so a bench or a test frame set is reproducible.

Every frame carries fresh sensor noise, like a real sensor: an "unchanging scene" therefore
still differs frame to frame, and only ``freeze()`` returns the very same bytes forever (the
way a wedged UVC camera fails).

Control API (used by the demo, the replay engine and tests): ``show_code``, ``show_image``,
``show_nothing``, ``unplug``/``replug``, ``freeze``/``unfreeze``, ``block``/``unblock``; and
``next_frame()`` pulls one frame synchronously in virtual time. As a ``FrameSource`` it also
has ``open()``/``read()``/``close()`` so ``drivers.camera.CameraReader`` can run it.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import segno

from kiosk.clock import Clock
from kiosk.devices import ReaderFault

Style = Literal["phone", "paper"]
#: Harder phone screens (``sample_screen_frame``): dark mode, a dimmed low-contrast screen,
#: moire from the screen's pixel grid, and dark mode with moire.
ScreenKind = Literal["inverted", "low_contrast", "moire", "inverted_moire"]
SCREEN_KINDS: tuple[ScreenKind, ...] = ("inverted", "low_contrast", "moire", "inverted_moire")

#: The QR alphanumeric alphabet, which Base45 pass payloads use.
BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

#: Distinct sensor-noise fields the fake camera cycles through (windows of one field).
_NOISE_POOL = 6
#: A blocked read waits at most this long (real seconds) so no test can hang on the fake.
BLOCK_BOUND_S = 10.0


def sample_payload(rng: np.random.Generator, min_len: int = 130, max_len: int = 154) -> str:
    """A pass-like text: a prefix and Base45 characters; 130-154 chars is QR version 8 at Q."""
    n = int(rng.integers(min_len, max_len + 1))
    body = "".join(BASE45_ALPHABET[i] for i in rng.integers(0, len(BASE45_ALPHABET), n - 4))
    return "KP1:" + body


def qr_modules(text: str) -> np.ndarray:
    """The code as a uint8 matrix (1 = dark module) including the 4-module quiet zone."""
    qr = segno.make(text, error="q", boost_error=False, micro=False)
    m = np.array([list(row) for row in qr.matrix], dtype=np.uint8)
    return np.pad(m, 4, constant_values=0)


@dataclass(frozen=True)
class SceneParams:
    """How hard a synthesised scene is. ``sample()`` draws a realistic mix from a seed."""

    style: Style
    code_px: int  # size of the code (with quiet zone) before perspective
    tilt: float  # corner jitter as a fraction of the card size
    rotation_deg: float
    blur_sigma: float
    noise_sigma: float
    gain: float  # < 1 is dim light
    glare: float  # 0..1 strength of a bright spot over the code
    jpeg_quality: int
    #: Phone screens only: a light-on-dark ("dark mode") code, the module contrast as a
    #: fraction of a normal screen's, and the strength of the moire a camera sees on a screen.
    inverted: bool = False
    contrast: float = 1.0
    moire: float = 0.0

    @classmethod
    def sample(cls, rng: np.random.Generator, style: Style | None = None) -> SceneParams:
        style = style or ("phone" if rng.random() < 0.5 else "paper")
        return cls(
            style=style,
            code_px=int(rng.integers(120, 300)),
            tilt=float(rng.uniform(0.0, 0.14)),
            rotation_deg=float(rng.uniform(-35, 35)),
            blur_sigma=float(rng.choice([0.0, 0.5, 0.8, 1.2, 1.6])),
            noise_sigma=float(rng.uniform(2, 9)),
            gain=float(rng.choice([1.0, 0.8, 0.55, 0.35, 0.25])),
            glare=float(rng.choice([0.0, 0.0, 0.4, 0.7, 0.9])),
            jpeg_quality=int(rng.integers(55, 92)),
        )


def _background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A gate-side scene: a lit gradient wall, a few objects, a darker lower part (a person)."""
    w, h = size
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    base = rng.uniform(60, 170, 3).astype(np.float32)
    slope = rng.uniform(-60, 60, 3).astype(np.float32)
    img = base[None, None, :] + (0.6 * y + 0.4 * x)[..., None] * slope[None, None, :]
    for _ in range(int(rng.integers(2, 6))):
        x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        x1, y1 = x0 + int(rng.integers(20, w // 2)), y0 + int(rng.integers(20, h // 2))
        cv2.rectangle(img, (x0, y0), (x1, y1), tuple(float(c) for c in rng.uniform(20, 220, 3)), -1)
    return img


def _card(text: str, params: SceneParams, rng: np.random.Generator) -> np.ndarray:
    """The code on its carrier, flat and front-on, as float32 BGR in 0..255."""
    mods = qr_modules(text)
    n = mods.shape[0]
    scale = max(1.0, params.code_px / n)
    code: np.ndarray = np.where(mods == 1, 0.0, 1.0).astype(np.float32)
    code = cv2.resize(code, (int(n * scale), int(n * scale)), interpolation=cv2.INTER_NEAREST)
    c = code.shape[0]
    if params.style == "phone":
        # A bright emissive screen inside a dark phone body; dark modules are not fully black.
        screen_w, screen_h = int(c * 1.15), int(c * 2.0)
        body = np.full((screen_h + 40, screen_w + 24, 3), 25.0, np.float32)
        ink = rng.uniform(10, 40)
        light, dark = (rng.uniform(200, 235), ink) if params.inverted else (245.0, ink)
        # Dark mode swaps the roles: the screen and the quiet zone are dark, modules light.
        paper, mark = (dark, light) if params.inverted else (light, dark)
        mark = paper + params.contrast * (mark - paper)
        screen = np.full((screen_h, screen_w, 3), paper, np.float32)
        y0, x0 = int(screen_h * 0.3), (screen_w - c) // 2
        screen[y0 : y0 + c, x0 : x0 + c] = (mark + (paper - mark) * code)[..., None]
        cv2.rectangle(screen, (x0, 10), (x0 + c, 30), (200.0, 120.0, 40.0), -1)
        body[20 : 20 + screen_h, 12 : 12 + screen_w] = screen
        return body
    # A printed card: off-white paper, slightly grey toner, a printed title bar.
    paper = rng.uniform(200, 235)
    card_w, card_h = int(c * 1.6), int(c * 1.25)
    card = np.full((card_h, card_w, 3), paper, np.float32)
    card[..., 0] -= 12  # warm paper
    y0, x0 = (card_h - c) // 2, int(c * 0.08)
    toner = rng.uniform(20, 60)
    card[y0 : y0 + c, x0 : x0 + c] = (toner + (paper - toner) * code)[..., None]
    cv2.rectangle(card, (x0 + c + 10, y0), (card_w - 10, y0 + 16), (90.0, 60.0, 30.0), -1)
    return card


def render_scene(
    text: str | None,
    params: SceneParams | None = None,
    seed: int = 0,
    size: tuple[int, int] = (640, 480),
) -> np.ndarray:
    """Render one BGR uint8 frame: ``text`` as a QR on its carrier, or just the background.

    The noise-free part is deterministic in ``seed``; sensor noise is added by ``add_noise``.
    """
    rng = np.random.default_rng(seed)
    params = params or SceneParams.sample(rng)
    w, h = size
    img = _background(rng, size)
    if text is not None:
        card = _card(text, params, rng)
        ch, cw = card.shape[:2]
        fit = min(1.0, 0.92 * min(w / cw, h / ch))
        src = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float32)
        jitter = rng.uniform(-params.tilt, params.tilt, (4, 2)) * np.array([cw, ch], np.float32)
        pts = (src + jitter - np.array([cw / 2, ch / 2], np.float32)) * fit
        a = np.deg2rad(params.rotation_deg)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
        pts = pts @ rot.T
        span = pts.max(axis=0) - pts.min(axis=0)
        room = np.maximum(np.array([w, h], np.float32) - span, 1)
        centre = pts.min(axis=0) * -1 + rng.uniform(0, 1, 2) * room
        dst = (pts + centre).astype(np.float32)
        m = cv2.getPerspectiveTransform(src, dst)
        warped = cv2.warpPerspective(card, m, (w, h), flags=cv2.INTER_LINEAR)
        mask = cv2.warpPerspective(np.ones((ch, cw), np.float32), m, (w, h))
        if params.moire > 0:
            warped = warped * _moire(rng, (w, h), params.moire)[..., None]
        img = img * (1 - mask[..., None]) + warped * mask[..., None]
        if params.glare > 0:
            gx, gy = dst.mean(axis=0) + rng.uniform(-0.25, 0.25, 2) * span
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            r = max(span.min() * rng.uniform(0.12, 0.3), 8.0)
            spot = np.exp(-(((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * r * r)))
            img = img + (params.glare * 230.0 * spot)[..., None]
    img = img * params.gain
    if params.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), params.blur_sigma)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if params.jpeg_quality < 100:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, params.jpeg_quality])
        if ok:
            decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            if decoded is not None:
                img = decoded
    return img


def _moire(rng: np.random.Generator, size: tuple[int, int], strength: float) -> np.ndarray:
    """The beat a camera's pixel grid makes with a screen's: two slanted gratings of a few
    pixels' period, multiplying the screen's light by up to ``strength``."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    beat = np.zeros((h, w), np.float32)
    for _ in range(2):
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(5.0, 14.0)
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)
        beat += 0.25 * (1 + np.cos(phase))
    return 1.0 - strength * beat


def add_noise(frame: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Per-frame sensor noise, so consecutive frames of a still scene are not identical."""
    if sigma <= 0:
        return frame.copy()
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, sigma, frame.shape).astype(np.int16)
    noisy: np.ndarray = np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return noisy


def sample_frame(seed: int, size: tuple[int, int] = (640, 480)) -> tuple[np.ndarray, str]:
    """A pass-sized code in a randomly hard scene, with sensor noise; and its text."""
    rng = np.random.default_rng(seed)
    text = sample_payload(rng)
    params = SceneParams.sample(rng)
    return add_noise(render_scene(text, params, seed, size), params.noise_sigma, seed), text


def sample_screen_frame(
    seed: int, kind: ScreenKind, size: tuple[int, int] = (640, 480)
) -> tuple[np.ndarray, str]:
    """A pass on a harder phone screen (``SCREEN_KINDS``) in a randomly hard scene; its text.

    Dark mode is what phones show when the wallet app follows the system theme; a dimmed
    screen in daylight leaves a third of the contrast; moire is the camera's pixel grid
    beating with the screen's."""
    if kind not in SCREEN_KINDS:
        raise ValueError(f"screen kind must be one of {SCREEN_KINDS}, not {kind!r}")
    rng = np.random.default_rng(seed)
    text = sample_payload(rng)
    params = replace(
        SceneParams.sample(rng, "phone"),
        inverted=kind.startswith("inverted"),
        contrast=float(rng.uniform(0.2, 0.4)) if kind == "low_contrast" else 1.0,
        moire=float(rng.uniform(0.25, 0.45)) if kind.endswith("moire") else 0.0,
    )
    return add_noise(render_scene(text, params, seed, size), params.noise_sigma, seed), text


def sample_empty_frame(seed: int, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """The gate with nobody showing a code, with sensor noise."""
    return add_noise(render_scene(None, None, seed, size), 4.0, seed)


def load_image(path_or_array: str | Path | np.ndarray) -> np.ndarray:
    """An image file or array as a BGR/gray uint8 frame; a bad file raises ``ValueError``."""
    if isinstance(path_or_array, np.ndarray):
        if path_or_array.dtype != np.uint8 or path_or_array.ndim not in (2, 3):
            raise ValueError("image array must be uint8 gray (H, W) or BGR (H, W, 3)")
        return path_or_array.copy()
    path = Path(path_or_array)
    data = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if img is None:
        raise ValueError(f"{path}: not a readable image")
    return img


@functools.lru_cache(maxsize=2)
def _empty_scene(seed: int, size: tuple[int, int]) -> np.ndarray:
    """The scene with no code in it (deterministic in ``seed``): rendered once per seed and
    size, shared read-only by every camera that starts on it or goes back to it (each frame
    is a new array made from it)."""
    scene = render_scene(None, SceneParams.sample(np.random.default_rng(seed)), seed, size)
    scene.setflags(write=False)
    return scene


class FakeCamera:
    """A scriptable camera. Thread-safe: the demo scripts it while a reader thread reads it."""

    name = "fake_camera"

    def __init__(
        self,
        clock: Clock,
        fps: float = 15.0,
        size: tuple[int, int] = (640, 480),
        seed: int = 0,
        *,
        pace: bool = False,
        noise_sigma: float = 3.0,
    ) -> None:
        self._clock = clock
        self.fps = fps
        self.size = size
        self._seed = seed
        self._pace = pace
        self._noise_sigma = noise_sigma
        self._lock = threading.Lock()
        self._scene = _empty_scene(seed, size)
        self._frame_no = 0
        self._noise_pool: tuple[np.ndarray, np.ndarray] | None = None
        self._noise_shape: tuple[int, ...] = ()
        self._frozen: np.ndarray | None = None
        self._unplugged = False
        self._opened = False
        self._release = threading.Event()
        self._release.set()
        self._closing = threading.Event()
        self._next_due = 0.0
        self.showing: str | None = None

    # -- scripting -----------------------------------------------------------------------
    def show_code(self, text: str, style: Style = "phone", seed: int | None = None) -> None:
        """Hold a QR of ``text`` in front of the camera (a fresh hand pose per ``seed``)."""
        if style not in ("phone", "paper"):
            raise ValueError(f"style must be 'phone' or 'paper', not {style!r}")
        s = self._seed + 1 + self._frame_no if seed is None else seed
        rng = np.random.default_rng(s)
        # The demo wants readable codes: a moderate pose, not the bench's hardest cases.
        params = SceneParams(
            style=style,
            code_px=int(rng.integers(170, 240)),
            tilt=float(rng.uniform(0, 0.08)),
            rotation_deg=float(rng.uniform(-15, 15)),
            blur_sigma=float(rng.choice([0.0, 0.6])),
            noise_sigma=3.0,
            gain=1.0,
            glare=0.0,
            jpeg_quality=85,
        )
        scene = render_scene(text, params, s, self.size)
        with self._lock:
            self._scene, self.showing = scene, text

    def show_image(self, path_or_array: str | Path | np.ndarray) -> None:
        img = load_image(path_or_array)
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        with self._lock:
            self._scene, self.showing = img, None

    def show_nothing(self) -> None:
        scene = _empty_scene(self._seed, self.size)
        with self._lock:
            self._scene, self.showing = scene, None

    def unplug(self) -> None:
        """The USB cable is pulled: reads fail until ``replug()`` and a reopen."""
        with self._lock:
            self._unplugged = True
            self._opened = False

    def replug(self) -> None:
        with self._lock:
            self._unplugged = False

    def freeze(self) -> None:
        """Return the very same frame forever (a wedged camera that still 'delivers')."""
        with self._lock:
            self._frozen = self._compose()

    def unfreeze(self) -> None:
        with self._lock:
            self._frozen = None

    def block(self) -> None:
        """The next reads hang (a stuck driver) until ``unblock()``/``close()``, bounded."""
        self._release.clear()

    def unblock(self) -> None:
        self._release.set()

    # -- frames --------------------------------------------------------------------------
    def _compose(self) -> np.ndarray:
        self._frame_no += 1
        if self._noise_sigma <= 0:
            return self._scene.copy()
        shape = self._scene.shape
        h, w = shape[:2]
        if self._noise_pool is None or self._noise_shape != shape:
            # Generating Gaussian noise per frame costs ~15 ms at 640x480; the demo plays 15
            # fps on a Pi. One field of saturating +/- offsets a few pixels larger than the
            # frame gives _NOISE_POOL different fields as shifted windows, in the memory of
            # one (a pool of separate fields held 11 MB of the demo daemon's memory).
            rng = np.random.default_rng(self._seed)
            noise = rng.normal(
                0.0, self._noise_sigma, (h + _NOISE_POOL, w + _NOISE_POOL, *shape[2:])
            )
            pos = np.clip(noise, 0, 255).astype(np.uint8)
            neg = np.clip(-noise, 0, 255).astype(np.uint8)
            self._noise_pool, self._noise_shape = (pos, neg), shape
        k = self._frame_no % _NOISE_POOL
        pos, neg = (field[k : k + h, k : k + w] for field in self._noise_pool)
        return cv2.subtract(cv2.add(self._scene, pos), neg)

    def next_frame(self) -> tuple[np.ndarray, int]:
        """One frame now, synchronously (virtual-time use); raises ``ReaderFault`` if lost."""
        with self._lock:
            if self._unplugged:
                raise ReaderFault("fake camera unplugged")
            frame = self._frozen if self._frozen is not None else self._compose()
        return frame, self._clock.monotonic_ns()

    # FrameSource interface, used by drivers.camera.CameraReader.
    def open(self) -> None:
        with self._lock:
            if self._unplugged:
                raise ReaderFault("fake camera not present")
            self._opened = True
        self._closing.clear()

    def read(self) -> tuple[np.ndarray, int]:
        if not self._release.is_set() and not self._release.wait(BLOCK_BOUND_S):
            raise ReaderFault("fake camera read blocked")
        with self._lock:
            if self._unplugged:
                raise ReaderFault("fake camera unplugged")
            if not self._opened:
                raise ReaderFault("fake camera not open")
        if self._pace:
            # Real-time playback for the demo: a camera delivers at its frame rate.
            now = time.monotonic()
            wait = self._next_due - now
            if wait > 0:
                self._closing.wait(wait)
            self._next_due = max(now, self._next_due) + 1.0 / self.fps
        return self.next_frame()

    def close(self) -> None:
        with self._lock:
            self._opened = False
        self._closing.set()
        self._release.set()
