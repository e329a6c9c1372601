"""Decoder backends: zxing-cpp and pyzbar behind one protocol; a missing library is clear."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from drivers.decoders import (
    Decoder,
    DecoderUnavailable,
    PyzbarDecoder,
    ZxingDecoder,
    build_decoder,
)
from drivers.fake_camera import SceneParams, render_scene, sample_empty_frame

CLEAN = SceneParams("paper", 220, 0.03, 8.0, 0.0, 2.0, 1.0, 0.0, 90)


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


@pytest.fixture(params=["zxing", "pyzbar"])
def decoder(request) -> Decoder:
    return build_decoder(request.param)


def test_each_backend_decodes_a_printed_pass_to_its_raw_bytes(decoder):
    text = "KP1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDE$VK G2EC"
    found = decoder.decode(_gray(render_scene(text, CLEAN, seed=1)))
    assert [c.data for c in found] == [text.encode()]
    assert len(found[0].corners) == 4


@pytest.mark.slow
def test_each_backend_finds_nothing_in_scenes_without_a_code(decoder):
    for seed in range(6):
        assert decoder.decode(_gray(sample_empty_frame(seed))) == []


def test_backends_satisfy_the_decoder_protocol(decoder):
    assert isinstance(decoder, Decoder)
    assert decoder.name in ("zxing", "pyzbar")


def test_decoders_refuse_colour_or_float_input_instead_of_guessing(decoder):
    with pytest.raises(ValueError, match="grayscale"):
        decoder.decode(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="grayscale"):
        decoder.decode(np.zeros((48, 64), np.float32))


def test_zxing_returns_binary_payload_bytes_unmodified():
    import segno

    payload = b"\x00\xff\xfePASS\x1b[2J"
    qr = segno.make(payload, error="q", mode="byte")
    m = np.array([list(r) for r in qr.matrix], np.uint8)
    img = np.where(np.pad(m, 4) == 1, 0, 255).astype(np.uint8)
    img = cv2.resize(img, None, fx=6, fy=6, interpolation=cv2.INTER_NEAREST)
    assert [c.data for c in ZxingDecoder().decode(img)] == [payload]


def test_missing_zxing_names_the_package_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "zxingcpp", None)
    with pytest.raises(DecoderUnavailable, match="pip install zxing-cpp"):
        ZxingDecoder()


def test_missing_zbar_library_names_the_debian_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyzbar.pyzbar", None)
    with pytest.raises(DecoderUnavailable, match="libzbar0"):
        PyzbarDecoder()


def test_zbar_shared_library_missing_says_apt_get_install_libzbar0(monkeypatch):
    import drivers.decoders as decoders

    def no_zbar(name):
        raise ImportError("Unable to find zbar shared library")

    monkeypatch.setattr(decoders.importlib, "import_module", no_zbar)
    with pytest.raises(DecoderUnavailable, match="sudo apt-get install libzbar0"):
        PyzbarDecoder()


def test_unknown_backend_is_refused_with_the_choices():
    with pytest.raises(DecoderUnavailable, match="zxing"):
        build_decoder("tesseract")


def test_each_backend_reads_a_dark_mode_code_on_the_hard_pass_only(decoder):
    text = "KP1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDE$VK G2EC"
    dark = SceneParams("phone", 220, 0.03, 8.0, 0.0, 2.0, 1.0, 0.0, 90, inverted=True)
    gray = _gray(render_scene(text, dark, seed=1))
    assert decoder.decode(gray) == []  # full frames never pay for the inversion
    assert [c.data for c in decoder.decode(gray, hard=True)] == [text.encode()]
