"""The frame pipeline: gate, decode, second pass, hygiene, hold-off; and serial-line hygiene."""

from __future__ import annotations

import functools
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checkpoint.bench.decode import SEED
from drivers.decoders import RawCode, build_decoder
from drivers.fake_camera import (
    SceneParams,
    add_noise,
    render_scene,
    sample_empty_frame,
    sample_frame,
)
from drivers.pipeline import (
    CONTROL_CATEGORIES,
    FramePipeline,
    SerialLineAssembler,
    SerialLinePipeline,
    check_payload,
    find_code_region,
)
from kiosk.config.readers import DecoderConfig
from kiosk.devices import CodeRead

PASS = "KP1:7Q2L1U1:C1B/LGA57J0J2OMWRQ8QV3GE5%M1S*T.4Y6Y-ZC5O0G1*1FMT4EXI74$/V+UPRCMD/I0"
EASY_PHONE = SceneParams("phone", 210, 0.04, -10.0, 0.0, 3.0, 1.0, 0.0, 85)
EASY_PAPER = SceneParams("paper", 200, 0.05, 12.0, 0.6, 3.0, 0.8, 0.0, 80)
#: Bench frames (seed SEED + i) that the fast pass misses and the second pass reads.
SECOND_PASS_SEEDS = (SEED + 3, SEED + 5, SEED + 14)


class ScriptedDecoder:
    """Returns scripted raw payloads and counts calls (pipeline logic without a real QR)."""

    name = "scripted"

    def __init__(self, payloads: list[bytes] | None = None) -> None:
        self.payloads = payloads or []
        self.calls = 0

    def decode(self, gray: np.ndarray, *, hard: bool = False) -> list[RawCode]:
        self.calls += 1
        return [RawCode(p) for p in self.payloads]


@pytest.fixture
def zxing_pipeline(clock) -> FramePipeline:
    return FramePipeline(build_decoder("zxing"), DecoderConfig(), clock, source="cam1")


@functools.lru_cache(maxsize=16)
def _scene(text: str | None, params: SceneParams = EASY_PHONE, seed: int = 3) -> np.ndarray:
    frame = render_scene(text, params, seed)
    frame.flags.writeable = False  # shared between tests: nobody may draw on it
    return frame


def _still(scene: np.ndarray, n: int) -> np.ndarray:
    """Frame ``n`` of an unchanging scene: same picture, fresh sensor noise."""
    return add_noise(scene, 3.0, n)


# -- reading --------------------------------------------------------------------------


@pytest.mark.parametrize("params", [EASY_PHONE, EASY_PAPER], ids=["phone", "paper"])
def test_pass_is_read_on_the_first_good_frame_with_source_and_frame_time(
    zxing_pipeline, clock, params
):
    frame_ns = clock.monotonic_ns() - 40_000_000  # the frame was grabbed 40 ms ago
    codes = zxing_pipeline.process(_still(_scene(PASS, params), 1), frame_ns)
    assert len(codes) == 1
    code = codes[0]
    assert isinstance(code, CodeRead)
    assert (code.text, code.source, code.mono_ns) == (PASS, "cam1", frame_ns)


def test_decode_time_is_measured_on_the_injected_clock(clock):
    class SlowDecoder(ScriptedDecoder):
        def decode(self, gray, *, hard=False):
            clock.advance(0.012)
            return super().decode(gray, hard=hard)

    pipeline = FramePipeline(SlowDecoder([PASS.encode()]), DecoderConfig(), clock)
    (code,) = pipeline.process(_scene(None), clock.monotonic_ns())
    assert code.decode_ms == pytest.approx(12.0)


@pytest.mark.parametrize("seed", SECOND_PASS_SEEDS)
def test_second_pass_reads_codes_the_fast_pass_misses(clock, seed):
    frame, text = sample_frame(seed)
    fast_only = FramePipeline(build_decoder("zxing"), DecoderConfig(second_pass=False), clock)
    assert fast_only.process(frame, 0) == []
    full = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    result = full.process_detailed(frame, 0)
    assert result.second_pass
    assert [c.text for c in result.codes] == [text]


@pytest.mark.slow
def test_second_pass_does_not_run_on_scenes_without_a_code(zxing_pipeline):
    for seed in range(8):
        zxing_pipeline.reset()
        result = zxing_pipeline.process_detailed(sample_empty_frame(seed), 0)
        assert result.decoded and not result.codes
        assert not result.second_pass


def test_code_region_is_found_around_the_code_and_not_in_an_empty_scene():
    import cv2

    frame = cv2.cvtColor(_scene(PASS, EASY_PAPER), cv2.COLOR_BGR2GRAY)
    box = find_code_region(frame)
    assert box is not None
    x0, y0, x1, y1 = box
    zx = build_decoder("zxing").decode(frame)[0]
    xs, ys = zip(*zx.corners, strict=True)
    assert x0 <= min(xs) and max(xs) <= x1 and y0 <= min(ys) and max(ys) <= y1
    assert find_code_region(cv2.cvtColor(sample_empty_frame(2), cv2.COLOR_BGR2GRAY)) is None


def test_pyzbar_backend_runs_the_same_pipeline(clock):
    pipeline = FramePipeline(build_decoder("pyzbar"), DecoderConfig(), clock, source="cam")
    assert [c.text for c in pipeline.process(_still(_scene(PASS), 1), 5)] == [PASS]


# -- change gate ----------------------------------------------------------------------


@pytest.mark.slow
def test_unchanging_scene_is_not_decoded_every_frame(clock):
    decoder = ScriptedDecoder()
    pipeline = FramePipeline(decoder, DecoderConfig(forced_decode_s=1.0), clock)
    scene = sample_empty_frame(4)
    for n in range(14):  # 14 frames at 15 fps: under a second
        pipeline.process(_still(scene, n), clock.monotonic_ns())
        clock.advance(1 / 15)
    assert decoder.calls == 1


@pytest.mark.slow
def test_still_scene_gets_a_forced_decode_every_forced_interval(clock):
    decoder = ScriptedDecoder()
    pipeline = FramePipeline(decoder, DecoderConfig(forced_decode_s=1.0), clock)
    stills = [_still(sample_empty_frame(4), n) for n in range(6)]
    for n in range(45):  # three seconds at 15 fps
        pipeline.process(stills[n % 6], clock.monotonic_ns())
        clock.advance(1 / 15)
    assert decoder.calls == 3


@pytest.mark.slow
def test_code_held_perfectly_still_is_read_by_the_forced_decode(clock):
    # A gate so insensitive that no change ever counts: only the forced decode can read it.
    cfg = DecoderConfig(change_threshold=255, forced_decode_s=1.0)
    pipeline = FramePipeline(build_decoder("zxing"), cfg, clock)
    assert pipeline.process(_still(_scene(None), 0), clock.monotonic_ns()) == []
    read_at = None
    for n in range(1, 30):
        clock.advance(0.067)  # 15 fps
        if pipeline.process(_still(_scene(PASS), n), clock.monotonic_ns()):
            read_at = n
            break
    assert read_at == 15  # the first frame at or after 1 s since the last decode


def test_a_change_in_the_scene_is_decoded_at_once(clock):
    decoder = ScriptedDecoder()
    pipeline = FramePipeline(decoder, DecoderConfig(second_pass=False), clock)
    pipeline.process(_still(sample_empty_frame(4), 0), clock.monotonic_ns())
    clock.advance(1 / 15)
    result = pipeline.process_detailed(_still(_scene(PASS), 1), clock.monotonic_ns())
    assert result.decoded
    assert decoder.calls == 2


def test_after_a_likely_code_every_frame_is_decoded_while_the_person_adjusts(clock):
    frame, _ = sample_frame(SECOND_PASS_SEEDS[0])
    # A decoder that never reads: the code stays "likely, not read" (real region detector).
    pipeline = FramePipeline(ScriptedDecoder(), DecoderConfig(), clock)
    first = pipeline.process_detailed(frame, clock.monotonic_ns())
    assert first.likely
    clock.advance(1 / 15)
    again = pipeline.process_detailed(frame, clock.monotonic_ns())
    assert again.decoded


# -- hold-off -------------------------------------------------------------------------


@pytest.mark.slow
def test_same_code_held_in_front_of_the_camera_is_submitted_once(clock):
    pipeline = FramePipeline(ScriptedDecoder([PASS.encode()]), DecoderConfig(holdoff_s=3), clock)
    submitted = []
    stills = [_still(_scene(None), n) for n in range(6)]
    for n in range(15 * 10):  # held for ten seconds, longer than the hold-off
        submitted += pipeline.process(stills[n % 6], clock.monotonic_ns())
        clock.advance(1 / 15)
    assert [c.text for c in submitted] == [PASS]


def test_same_code_shown_again_after_the_holdoff_is_submitted_again(clock):
    decoder = ScriptedDecoder([PASS.encode()])
    pipeline = FramePipeline(decoder, DecoderConfig(holdoff_s=3), clock)
    assert len(pipeline.process(_scene(None, seed=1), clock.monotonic_ns())) == 1
    decoder.payloads = []
    clock.advance(0.5)
    pipeline.process(_scene(None, seed=2), clock.monotonic_ns())  # code taken away
    clock.advance(2.0)
    decoder.payloads = [PASS.encode()]
    assert pipeline.process(_scene(None, seed=3), clock.monotonic_ns()) == []  # within 3 s
    decoder.payloads = []
    pipeline.process(_scene(None, seed=4), clock.monotonic_ns())
    clock.advance(3.5)
    decoder.payloads = [PASS.encode()]
    assert len(pipeline.process(_scene(None, seed=5), clock.monotonic_ns())) == 1


def test_two_different_codes_in_one_frame_are_both_submitted(clock):
    pipeline = FramePipeline(
        ScriptedDecoder([b"KP1:AAA", b"KP1:BBB", b"KP1:AAA"]), DecoderConfig(), clock
    )
    assert [c.text for c in pipeline.process(_scene(None), 0)] == ["KP1:AAA", "KP1:BBB"]


# -- hygiene --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),
        (b"A" * 4096, "oversized"),
        (("\u00e9" * 600).encode(), "oversized"),
        (b"KP1:\xff\xfe\x80", "not_utf8"),
        (b"KP1:ABC\x00DEF", "control_chars"),
        (b"KP1:ABC\x1b[2J", "control_chars"),
        (b"KP1:ABC\r\nX-Injected: 1", "control_chars"),
        ("KP1:\u202eFDP".encode(), "control_chars"),  # right-to-left override
        ("KP1:A\u2028B".encode(), "control_chars"),  # line separator
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not_utf8"),
        (b"PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "control_chars"),
    ],
)
def test_hostile_payloads_are_rejected_with_a_reason_and_never_reach_the_engine(
    clock, payload, reason
):
    pipeline = FramePipeline(ScriptedDecoder([payload]), DecoderConfig(), clock, source="cam")
    result = pipeline.process_detailed(_scene(None), 7)
    assert result.codes == []
    assert [r.reason for r in result.rejected] == [reason]
    assert result.rejected[0].source == "cam"
    assert pipeline.stats.last_rejection == reason


@pytest.mark.parametrize(
    "text",
    [
        "'; DROP TABLE events; --",
        "<script>alert(1)</script>",
        'KP1:" OR 1=1 --',
        "\u4e2d\u6587 pass",
    ],
)
def test_sql_and_html_text_passes_hygiene_byte_for_byte_as_data(clock, text):
    pipeline = FramePipeline(ScriptedDecoder([text.encode()]), DecoderConfig(), clock)
    assert [c.text for c in pipeline.process(_scene(None), 0)] == [text]


def test_a_hostile_code_held_up_is_reported_once_per_holdoff(clock):
    pipeline = FramePipeline(ScriptedDecoder([b"\x00junk"]), DecoderConfig(holdoff_s=3), clock)
    reasons = []
    for n in range(30):  # two seconds, a change on every frame
        reasons += [
            r.reason
            for r in pipeline.process_detailed(
                _scene(None, seed=n % 2), clock.monotonic_ns()
            ).rejected
        ]
        clock.advance(1 / 15)
    assert reasons == ["control_chars"]


def test_a_rejected_code_does_not_hide_a_good_one_in_the_same_frame(clock):
    pipeline = FramePipeline(ScriptedDecoder([b"\x00junk", PASS.encode()]), DecoderConfig(), clock)
    result = pipeline.process_detailed(_scene(None), 0)
    assert [c.text for c in result.codes] == [PASS]
    assert [r.reason for r in result.rejected] == ["control_chars"]


def test_real_qr_with_a_nul_byte_is_rejected_not_crashing_the_reader(clock):
    import cv2
    import segno

    qr = segno.make(b"KP1:\x00\x01binary", error="q", mode="byte")
    m = np.array([list(r) for r in qr.matrix], np.uint8)
    img = cv2.resize(
        np.where(np.pad(m, 4) == 1, 0, 255).astype(np.uint8),
        None,
        fx=6,
        fy=6,
        interpolation=cv2.INTER_NEAREST,
    )
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    result = pipeline.process_detailed(img, 0)
    assert result.codes == [] and [r.reason for r in result.rejected] == ["control_chars"]


@pytest.mark.parametrize(
    "frame",
    [
        None,
        np.zeros((0, 0), np.uint8),
        np.zeros((4, 4), np.float64),
        np.zeros((4, 4, 2), np.uint8),
        "frame",
    ],
)
def test_a_broken_frame_is_rejected_as_bad_frame(clock, frame):
    pipeline = FramePipeline(ScriptedDecoder([PASS.encode()]), DecoderConfig(), clock)
    result = pipeline.process_detailed(frame, 0)
    assert result.codes == [] and [r.reason for r in result.rejected] == ["bad_frame"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=5000))
def test_fuzzed_payload_bytes_are_either_clean_text_or_a_reason(data):
    text, reason = check_payload(data, 512)
    assert (text is None) != (reason is None)
    if text is not None:
        assert text.encode("utf-8") == data
        assert len(text) <= 512
        assert not any(unicodedata.category(ch) in CONTROL_CATEGORIES for ch in text)
    else:
        assert reason in {"empty", "oversized", "not_utf8", "control_chars"}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=600))
def test_fuzzed_text_payloads_never_smuggle_control_characters(text):
    got, _ = check_payload(text.encode("utf-8", "surrogatepass"), 512)
    if got is not None:
        assert not any(unicodedata.category(ch) in CONTROL_CATEGORIES for ch in got)


# -- serial lines -----------------------------------------------------------------------


def test_serial_lines_split_on_cr_lf_or_crlf_across_chunks():
    asm = SerialLineAssembler(64)
    assert asm.feed(b"KP1:AB") == []
    assert asm.feed(b"C\r\nKP1:D") == [b"KP1:ABC"]
    assert asm.feed(b"EF\rKP1:G\n\n\r") == [b"KP1:DEF", b"KP1:G"]


def test_unterminated_garbage_is_dropped_up_to_the_next_line_end():
    asm = SerialLineAssembler(16)
    out = asm.feed(bytes(range(0x80, 0xFF)) + b"\r\nKP1:OK\r\n")
    assert out == [None, b"KP1:OK"]


def test_serial_pipeline_rejects_4kb_lines_and_junk_but_keeps_the_next_pass():
    lines = SerialLinePipeline(DecoderConfig(max_payload_chars=512), source="scanner")
    codes, rejected = lines.feed(
        b"A" * 4096 + b"\r\n" + b"\xff\xfe\x00\r\n" + PASS.encode() + b"\r\n", 9
    )
    assert [(c.text, c.source, c.mono_ns) for c in codes] == [(PASS, "scanner", 9)]
    assert [r.reason for r in rejected] == ["oversized", "not_utf8"]


def test_serial_pipeline_holds_off_a_repeated_scan():
    lines = SerialLinePipeline(DecoderConfig(holdoff_s=3))
    assert len(lines.feed(PASS.encode() + b"\r\n", 0)[0]) == 1
    assert lines.feed(PASS.encode() + b"\r\n", 1_000_000_000)[0] == []
    assert len(lines.feed(PASS.encode() + b"\r\n", 5_000_000_000)[0]) == 1


# -- harder phone screens: dark mode, low contrast, moire --------------------------------------

DARK_PHONE = SceneParams("phone", 210, 0.04, -10.0, 0.0, 3.0, 1.0, 0.0, 85, inverted=True)


def test_dark_mode_code_is_read_on_the_second_pass_not_by_inverting_every_frame(zxing_pipeline):
    import zxingcpp

    frame = _scene(PASS, DARK_PHONE)
    qr = zxingcpp.BarcodeFormat.QRCode
    # It really is light on dark: the plain decoder needs the inversion to read it...
    assert zxingcpp.read_barcodes(frame, formats=qr, try_invert=False) == []
    assert [b.text for b in zxingcpp.read_barcodes(255 - frame, formats=qr, try_invert=False)] == [
        PASS
    ]
    # ...and the pipeline reads it where a code-like region made the inversion worth trying.
    result = zxing_pipeline.process_detailed(frame, 0)
    assert [c.text for c in result.codes] == [PASS]
    assert result.second_pass and result.likely


class CountingInversions:
    """The real zxing decoder, recording which passes asked for the costly inversion."""

    name = "zxing"

    def __init__(self) -> None:
        self.inner = build_decoder("zxing")
        self.hard_calls = 0

    def decode(self, gray: np.ndarray, *, hard: bool = False) -> list[RawCode]:
        self.hard_calls += hard
        return self.inner.decode(gray, hard=hard)


@pytest.mark.slow
def test_empty_frames_never_pay_for_the_inversion(clock):
    decoder = CountingInversions()
    pipeline = FramePipeline(decoder, DecoderConfig(), clock)
    for seed in range(8):
        pipeline.reset()
        assert pipeline.process(sample_empty_frame(SEED + 100_000 + seed), 0) == []
    assert decoder.hard_calls == 0


@pytest.mark.parametrize("kind", ["inverted", "low_contrast", "moire", "inverted_moire"])
@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_harder_screens_are_read_at_least_as_often_as_bare_zxing_and_never_misread(
    kind, zxing_pipeline
):
    import zxingcpp

    from drivers.fake_camera import sample_screen_frame

    read = bare = 0
    for i in range(6):
        frame, text = sample_screen_frame(SEED + 50_000 + i, kind)
        zxing_pipeline.reset()
        got = [c.text for c in zxing_pipeline.process(frame, 0)]
        assert set(got) <= {text}
        read += text in got
        bare += text in [
            b.text for b in zxingcpp.read_barcodes(frame, formats=zxingcpp.BarcodeFormat.QRCode)
        ]
    assert read >= bare and read >= 3


def test_a_screen_kind_outside_the_repertoire_is_refused():
    from drivers.fake_camera import sample_screen_frame

    with pytest.raises(ValueError, match="screen kind"):
        sample_screen_frame(1, "holographic")  # type: ignore[arg-type]


@pytest.mark.slow
def test_low_contrast_and_moire_screens_are_what_they_say():
    import cv2

    def code_spread(params: SceneParams) -> float:
        gray = cv2.cvtColor(render_scene(PASS, params, 3), cv2.COLOR_BGR2GRAY)
        box = find_code_region(gray)
        assert box is not None
        x0, y0, x1, y1 = box
        dx, dy = (x1 - x0) // 3, (y1 - y0) // 3  # the middle of the code: modules only
        crop = gray[y0 + dy : y1 - dy, x0 + dx : x1 - dx].astype(float)
        return float(np.percentile(crop, 95) - np.percentile(crop, 5))

    low = SceneParams("phone", 210, 0.04, -10.0, 0.0, 3.0, 1.0, 0.0, 85, contrast=0.3)
    assert code_spread(low) < 0.5 * code_spread(EASY_PHONE)
    moire = SceneParams("phone", 210, 0.04, -10.0, 0.0, 3.0, 1.0, 0.0, 85, moire=0.4)
    assert not np.array_equal(render_scene(PASS, moire, 3), render_scene(PASS, EASY_PHONE, 3))
