"""QR decoder backends behind one small protocol: zxing-cpp (default) and pyzbar (libzbar0).

zxing-cpp is the default: on our generated and photographed frames it decodes more codes and
is several times faster than zbar. Both are asked for QR codes only: a pass is always a QR
code, and skipping the 1D scanners makes an empty frame roughly three times cheaper.

Backends return raw bytes, never library-decoded text: payload hygiene (UTF-8, length,
control characters) is the pipeline's job, done the same way for every source.

A missing library is a clear ``DecoderUnavailable`` naming what to install; nothing is
imported at module import time, so the kiosk starts (and reports) without either.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import zxingcpp  # optional at run time (imported on first use)

BACKENDS = ("zxing", "pyzbar")


class DecoderUnavailable(RuntimeError):
    """The configured decoder library cannot be loaded; the message says what to install."""


@dataclass(frozen=True)
class RawCode:
    """One decoded symbol: its raw bytes and, when known, its corner points (x, y)."""

    data: bytes
    corners: tuple[tuple[int, int], ...] = ()


@runtime_checkable
class Decoder(Protocol):
    name: str

    def decode(self, gray: np.ndarray, *, hard: bool = False) -> list[RawCode]:
        """Decode QR codes in an 8-bit grayscale image.

        ``hard=True`` marks the pipeline's second pass: a prepared (normalised, upscaled,
        sharpened or thresholded) crop where a code is likely; backends may use settings
        that would be wasted on full frames."""


def _import_library(backend: str, module: str, install: Callable[[ImportError], str]) -> Any:
    """The backend's library, or ``DecoderUnavailable`` saying (``install(exc)``) what to do."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DecoderUnavailable(f"decoder {backend!r} {install(exc)} ({exc})") from None


def _zbar_install_hint(exc: ImportError) -> str:
    # pyzbar imports fine but fails to find libzbar.so.0 at import of pyzbar.pyzbar.
    missing = str(exc).lower()
    if "zbar" in missing and "pyzbar" not in missing:
        return "is not usable: sudo apt-get install libzbar0"
    return "is not usable: pip install pyzbar and sudo apt-get install libzbar0"


def _check_gray(gray: np.ndarray) -> np.ndarray:
    if not isinstance(gray, np.ndarray) or gray.dtype != np.uint8 or gray.ndim != 2:
        raise ValueError("decoder input must be a 2-D uint8 grayscale array")
    return gray if gray.flags.c_contiguous else np.ascontiguousarray(gray)


class ZxingDecoder:
    """zxing-cpp (PyPI ``zxing-cpp``; wheels for aarch64 and armv7)."""

    name = "zxing"

    def __init__(self) -> None:
        zxingcpp = _import_library(
            "zxing", "zxingcpp", lambda exc: "needs the zxing-cpp package: pip install zxing-cpp"
        )
        self._zx = zxingcpp
        self._qr = zxingcpp.BarcodeFormat.QRCode

    def decode(self, gray: np.ndarray, *, hard: bool = False) -> list[RawCode]:
        gray = _check_gray(gray)
        zx = self._zx
        # QR is found in any orientation without try_rotate (that is for 1D codes). Inverted
        # (light-on-dark, "dark mode") codes are tried on the hard pass only: there the crop
        # is small and likely holds a code, while on full frames the inversion would double
        # the cost of every frame without one.
        found = zx.read_barcodes(
            gray,
            formats=self._qr,
            try_rotate=False,
            try_invert=hard,
            # A prepared crop is already at the right scale: skip the downscale pyramid.
            try_downscale=not hard,
        )
        return [_zx_raw(b) for b in found if b.valid]


def _zx_raw(b: zxingcpp.Barcode) -> RawCode:
    p = b.position
    corners = tuple(
        (int(pt.x), int(pt.y)) for pt in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)
    )
    return RawCode(bytes(b.bytes), corners)


class PyzbarDecoder:
    """zbar through pyzbar (PyPI ``pyzbar`` and Debian ``libzbar0``)."""

    name = "pyzbar"

    def __init__(self) -> None:
        pyzbar = _import_library("pyzbar", "pyzbar.pyzbar", _zbar_install_hint)
        self._zbar = pyzbar
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]

    def decode(self, gray: np.ndarray, *, hard: bool = False) -> list[RawCode]:
        gray = _check_gray(gray)
        found = self._zbar.decode(gray, symbols=self._symbols)
        if hard and not found:
            # zbar has no inverted mode: feed it the negative for dark-mode screens.
            found = self._zbar.decode(255 - gray, symbols=self._symbols)
        return [
            RawCode(bytes(r.data), tuple((int(p.x), int(p.y)) for p in r.polygon)) for r in found
        ]


def build_decoder(backend: str) -> Decoder:
    """The decoder named in config; raises ``DecoderUnavailable`` with what to install."""
    if backend == "zxing":
        return ZxingDecoder()
    if backend == "pyzbar":
        return PyzbarDecoder()
    raise DecoderUnavailable(f"unknown decoder backend {backend!r}; choose from {BACKENDS}")
