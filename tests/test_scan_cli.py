"""``kiosk scan IMAGE...``: one JSON line per file through the camera's pipeline."""

from __future__ import annotations

import json
import os
import sys

import cv2
import pytest

from checkpoint.bench.decode import SEED
from checkpoint.cli import main
from drivers.fake_camera import SceneParams, render_scene, sample_empty_frame, sample_frame

PASS = "KP1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDE$VK G2EC0LSV5RF"
PHONE = SceneParams("phone", 230, 0.05, -12.0, 0.5, 4.0, 0.9, 0.0, 80)


@pytest.fixture(scope="module")
def scenes():
    """The photos' pixels, rendered once for the module (each is fixed by its seed)."""
    hard, hard_text = sample_frame(SEED + 5)
    return render_scene(PASS, PHONE, seed=8), hard, sample_empty_frame(1), hard_text


@pytest.fixture
def photos(tmp_path, scenes):
    """A phone-screen photo, a hard photo only the second pass reads, and an empty scene,
    written afresh into this test's directory."""
    phone, hard, empty, hard_text = scenes
    paths = {}
    paths["phone"] = tmp_path / "phone.jpg"
    cv2.imwrite(str(paths["phone"]), phone)
    paths["hard"] = tmp_path / "hard.png"
    cv2.imwrite(str(paths["hard"]), hard)
    paths["empty"] = tmp_path / "empty.png"
    cv2.imwrite(str(paths["empty"]), empty)
    return paths, hard_text


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.slow
def test_scan_prints_the_decoded_text_of_each_photo_as_json_lines(photos, capsys):
    paths, hard_text = photos
    code = main(["scan", str(paths["phone"]), str(paths["hard"]), str(paths["empty"])])
    out = capsys.readouterr()
    assert code == 0 and out.err == ""
    lines = _lines(out.out)
    assert [(d["file"], d["codes"]) for d in lines] == [
        (str(paths["phone"]), [PASS]),
        (str(paths["hard"]), [hard_text]),
        (str(paths["empty"]), []),
    ]
    assert all(isinstance(d["ms"], float) and d["ms"] >= 0 for d in lines)


@pytest.mark.slow
def test_the_same_photo_twice_is_read_twice_no_holdoff_across_files(photos, capsys):
    paths, _ = photos
    assert main(["scan", str(paths["phone"]), str(paths["phone"])]) == 0
    assert [d["codes"] for d in _lines(capsys.readouterr().out)] == [[PASS], [PASS]]


def test_unreadable_files_are_named_on_stderr_the_rest_still_scanned_exit_2(
    photos, tmp_path, capsys
):
    paths, _ = photos
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    missing = tmp_path / "missing.png"
    code = main(["scan", str(bad), str(paths["phone"]), str(missing)])
    out = capsys.readouterr()
    assert code == 2
    assert [d["codes"] for d in _lines(out.out)] == [[PASS]]
    assert out.err.splitlines() == [
        f"kiosk scan: {bad}: not a readable image",
        f"kiosk scan: {missing}: no such file",
    ]


def test_scan_with_the_pyzbar_backend(photos, capsys):
    paths, _ = photos
    assert main(["scan", "--backend", "pyzbar", str(paths["phone"])]) == 0
    assert _lines(capsys.readouterr().out)[0]["codes"] == [PASS]


def test_a_code_failing_hygiene_is_reported_as_rejected_not_printed(tmp_path, capsys):
    import numpy as np
    import segno

    qr = segno.make(b"KP1:\x1b[2J\x00", error="q", mode="byte")
    m = np.array([list(r) for r in qr.matrix], np.uint8)
    img = np.where(np.pad(m, 4) == 1, 0, 255).astype(np.uint8)
    path = tmp_path / "hostile.png"
    cv2.imwrite(str(path), cv2.resize(img, None, fx=6, fy=6, interpolation=cv2.INTER_NEAREST))
    assert main(["scan", str(path)]) == 0
    line = _lines(capsys.readouterr().out)[0]
    assert line["codes"] == [] and line["rejected"] == ["control_chars"]


def test_missing_decoder_library_is_one_clear_line_exit_1(photos, capsys, monkeypatch):
    paths, _ = photos
    monkeypatch.setitem(sys.modules, "zxingcpp", None)
    assert main(["scan", str(paths["phone"])]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install zxing-cpp" in err


def test_a_bad_config_is_a_usage_error(tmp_path, photos, capsys):
    paths, _ = photos
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[readers.decoder]\nholdoff_s = -1\n")
    assert main(["scan", "--config", str(cfg), str(paths["phone"])]) == 2
    assert "readers.decoder.holdoff_s" in capsys.readouterr().err


def test_scan_without_files_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["scan"])
    assert info.value.code == 2


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_an_image_over_the_pixel_budget_is_refused_from_its_header(tmp_path, capsys):
    """A 20000 x 20000 PNG of a few hundred KB: refused before decoding (issue 15)."""
    import struct
    import zlib

    from checkpoint.cli import main

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    width = height = 20000
    pack = zlib.compressobj(9, strategy=zlib.Z_RLE)  # the same bytes' size, in half the time
    row = b"\x00" * (width + 1)
    data = b"".join(pack.compress(row) for _ in range(height)) + pack.flush()
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", data)
        + chunk(b"IEND", b"")
    )
    assert main(["scan", str(bomb)]) == 2
    err = capsys.readouterr().err
    assert "20000x20000 pixels is over the budget" in err


def test_a_folder_given_as_an_image_is_not_called_missing(tmp_path, capsys):
    """`kiosk scan photos/` said `photos/: no such file` of a folder that is there."""
    assert main(["scan", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"kiosk scan: {tmp_path}: a folder, not an image file"
    ]


def test_a_device_or_pipe_given_as_an_image_is_not_called_missing(tmp_path, capsys):
    """`kiosk scan /dev/video0` (the camera instead of a photo of it) said `no such file` of
    a device that is there."""
    fifo = tmp_path / "frames"
    os.mkfifo(fifo)
    assert main(["scan", str(fifo)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"kiosk scan: {fifo}: not a regular file (a device or a pipe), not an image file"
    ]


@pytest.mark.parametrize("budget", ["0", "-5"])
def test_a_pixel_budget_below_one_is_a_usage_error(budget, photos, capsys):
    """`--max-pixels 0` (or a negative one) refused every image as 'over the budget', one
    line per file, as if the files were at fault."""
    paths, _ = photos
    assert main(["scan", "--max-pixels", budget, str(paths["phone"])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-pixels" in err and str(paths["phone"]) not in err
