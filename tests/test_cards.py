from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from support import need

from kiosk import cards
from kiosk.cards import CardError, CardFallbackWarning, card_format_for, qr_for, render_card
from kiosk.passes import issue_pass

KEY = Ed25519PrivateKey.from_private_bytes(b"\x55" * 32)
NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
#: The site's zone the cards are dated in (render_card assumes none).
SITE = "Asia/Shanghai"
PAYLOAD, PASS = issue_pass(KEY, "12-3-0502", "王小明", "visitor", 2, now=NOW, flags=["escort"])
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def cjk_font() -> None:
    need(cards.find_cjk_font() is not None, "a CJK font (fonts-noto-cjk)")


def _svg_texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)
    return [t.text or "" for t in root.iter(f"{SVG_NS}text")]


def _decode_png(png: bytes) -> list[str]:
    image = Image.open(io.BytesIO(png)).convert("L")
    return [r.text for r in zxingcpp.read_barcodes(image)]


def test_svg_card_shows_household_holder_role_and_validity_in_both_languages():
    texts = " | ".join(_svg_texts(render_card(PASS, PAYLOAD, "svg", site_name="Demo", tz=SITE)))
    for expected in (
        "12-3-0502",
        "王小明",
        "户号 Household",
        "持证人 Holder",
        "访客 Visitor",
        "有效期 Valid",
        "2026-03-02 16:30",
        "2026-03-04 16:30",
        "需陪同",
        "Escort required",
        "出入通行证 Entry pass",
        PASS.pass_id,
    ):
        assert expected in texts


def test_svg_qr_modules_are_exactly_the_payload_qr():
    svg = render_card(PASS, PAYLOAD, "svg", tz=SITE)
    path = next(ET.fromstring(svg).iter(f"{SVG_NS}path")).get("d")
    matrix = qr_for(PAYLOAD).matrix
    module = cards._QR_SIZE / (len(matrix) + 2 * cards._QUIET_MODULES)
    x0 = cards._QR_LEFT + cards._QUIET_MODULES * module
    y0 = cards._QR_TOP + cards._QUIET_MODULES * module
    dark = set()
    for x, y, run in re.findall(r"M([\d.]+) ([\d.]+)h([\d.]+)", path):
        col, row = round((float(x) - x0) / module), round((float(y) - y0) / module)
        dark |= {(row, col + i) for i in range(round(float(run) / module))}
    expected = {(r, c) for r, line in enumerate(matrix) for c, v in enumerate(line) if v}
    assert dark == expected


def test_card_qr_is_version_8_or_smaller_at_error_correction_q():
    qr = qr_for(PAYLOAD)
    assert qr.error == "Q" and qr.version <= 8 and qr.mode == "alphanumeric"


@pytest.mark.slow
def test_png_card_scans_back_to_the_exact_payload():
    png = render_card(PASS, PAYLOAD, "png", tz=SITE)
    image = Image.open(io.BytesIO(png))
    assert image.size == (1011, 638)  # 85.6 x 54 mm at 300 dpi
    assert _decode_png(png) == [PAYLOAD]


def test_png_without_a_cjk_font_falls_back_to_english_and_says_so(monkeypatch):
    monkeypatch.setattr(cards, "find_cjk_font", lambda: None)
    payload, pass_ = issue_pass(KEY, "12-3-0502", "Wang Xiaoming", "visitor", 2, now=NOW)
    with pytest.warns(CardFallbackWarning, match="fonts-noto-cjk"):
        png = render_card(pass_, payload, "png", tz=SITE)
    assert _decode_png(png) == [payload]


def test_a_chinese_name_is_not_printed_as_empty_boxes_without_a_cjk_font(monkeypatch):
    """Before: with no CJK font the PNG fell back to English, yet the holder 王小明 stayed
    on it, drawn by Pillow's font that has no Chinese: three empty boxes where the name
    should be, a card the guard cannot check against the person. It is refused, saying
    which character and what to do (a CJK font, or the SVG card)."""
    monkeypatch.setattr(cards, "find_cjk_font", lambda: None)
    with pytest.warns(CardFallbackWarning), pytest.raises(CardError) as refused:
        render_card(PASS, PAYLOAD, "png", tz=SITE)
    assert "U+738B" in str(refused.value) and "fonts-noto-cjk" in str(refused.value)
    assert "SVG" in str(refused.value)


@pytest.mark.usefixtures("cjk_font")
def test_a_rare_character_the_font_lacks_is_refused_not_printed_as_a_box():
    """A name with a rare character (𪚥, CJK extension B, outside Noto Sans CJK) was printed
    as the font's empty box on a PNG card. Refused, naming the character."""
    payload, pass_ = issue_pass(KEY, "3-1", "张𪚥", "resident", 2, now=NOW)
    with pytest.raises(CardError, match=r"U\+2A6A5"):
        render_card(pass_, payload, "png", tz=SITE)
    assert render_card(pass_, payload, "svg", tz=SITE)  # the printing browser's fonts draw it


def test_english_only_png_needs_no_warning(monkeypatch, recwarn):
    monkeypatch.setattr(cards, "find_cjk_font", lambda: None)
    payload, pass_ = issue_pass(KEY, "12-3-0502", "Wang Xiaoming", "visitor", 2, now=NOW)
    render_card(pass_, payload, "png", lang="en", tz=SITE)
    assert not [w for w in recwarn if issubclass(w.category, CardFallbackWarning)]


def test_single_language_cards_carry_only_that_language():
    en = " ".join(_svg_texts(render_card(PASS, PAYLOAD, "svg", lang="en", tz=SITE)))
    zh = " ".join(_svg_texts(render_card(PASS, PAYLOAD, "svg", lang="zh-CN", tz=SITE)))
    assert "Household" in en and "户号" not in en
    assert "户号" in zh and "Household" not in zh
    assert "王小明" in en and "王小明" in zh  # the holder is the holder in any language


def test_markup_in_a_name_is_text_not_svg():
    payload, p = issue_pass(KEY, "1&2", "<b>Li</b>", "resident", 1, now=NOW)
    svg = render_card(p, payload, "svg", tz=SITE)
    assert "<b>" not in svg.decode()
    assert "<b>Li</b>" in _svg_texts(svg)


def test_cjk_font_is_found_from_the_environment_first(monkeypatch, tmp_path):
    font = tmp_path / "my.ttf"
    font.write_bytes(b"x")
    monkeypatch.setenv("KIOSK_CJK_FONT", str(font))
    cards.find_cjk_font.cache_clear()
    try:
        assert cards.find_cjk_font() == font
    finally:
        cards.find_cjk_font.cache_clear()


@pytest.mark.parametrize(("name", "fmt"), [("a.svg", "svg"), ("B.PNG", "png")])
def test_card_format_follows_the_file_name(name, fmt):
    assert card_format_for(name) == fmt


def test_unknown_card_format_or_language_is_a_clear_error():
    with pytest.raises(CardError, match="svg or .png"):
        card_format_for("card.pdf")
    with pytest.raises(CardError, match="unknown card format"):
        render_card(PASS, PAYLOAD, "pdf", tz=SITE)  # type: ignore[arg-type]
    with pytest.raises(CardError, match="unknown card language"):
        render_card(PASS, PAYLOAD, "svg", lang="fr", tz=SITE)  # type: ignore[arg-type]


def test_a_pass_from_midnight_to_midnight_prints_its_last_valid_day():
    """A pass valid from 1 December 00:00 for 30 days ends at 31 December 00:00: the gate
    refuses it all of the 31st, yet the card read '2026-12-01 – 2026-12-31'. Printed as
    dates, the range names the days it opens the gate: 1 to 30 December."""
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    midnight = datetime(2026, 12, 1, tzinfo=shanghai)
    payload, pass_ = issue_pass(KEY, "1-1", "Li", days=30, now=midnight, tz=shanghai)
    texts = " ".join(_svg_texts(render_card(pass_, payload, "svg", lang="en", tz=shanghai)))
    assert "2026-12-01 –" in texts and "2026-12-30" in texts and "2026-12-31" not in texts


def _ink(png: bytes, box: tuple[int, int, int, int]) -> int:
    """How many dark pixels a PNG card has inside ``box`` (left, top, right, bottom)."""
    image = Image.open(io.BytesIO(png)).convert("L").crop(box)
    return sum(1 for v in image.tobytes() if v < 128)


@pytest.mark.slow
@pytest.mark.usefixtures("cjk_font")
def test_a_long_wide_name_stays_on_the_card():
    """Before: the holder's width was guessed at 0.6 em a Latin letter, so a name in
    capitals (as a foreigner's passport spells it) or of wide letters ran past the card's
    right edge, cut off where the card is trimmed. It is shrunk to fit, on PNG by the font's
    own measure and on SVG by widths no narrower than the printing browser's fonts draw."""
    payload, pass_ = issue_pass(KEY, "1", "WWWWWWWWWWWWWWWWWWWWW", "resident", 2, now=NOW)
    png = render_card(pass_, payload, "png", tz=SITE)
    w, h = Image.open(io.BytesIO(png)).size
    assert _ink(png, (w - 30, 60, w - 8, h - 60)) == 0  # the right margin is blank
    font_file = cards.find_cjk_font()
    root = ET.fromstring(render_card(pass_, payload, "svg", tz=SITE))
    for t in root.iter(f"{SVG_NS}text"):
        size = float(t.get("font-size") or 0)
        font = cards._load_font(font_file, 100)
        right = float(t.get("x") or 0) + font.getlength(t.text or "") * size / 100
        assert right <= cards._W - cards._MARGIN, t.text


def test_a_pass_with_both_flags_keeps_its_last_line_off_the_cards_edge():
    """Before: a returnee's pass under observation and with an escort printed its second
    flag line at 52.5 mm of the card's 54, on the border where the card is trimmed. The
    lines close up to stay inside the margin."""
    payload, pass_ = issue_pass(
        KEY, "1-1", "Li", "resident", 2, now=NOW, flags=["observation", "escort"]
    )
    png = render_card(pass_, payload, "png", lang="en", tz=SITE)
    w, h = Image.open(io.BytesIO(png)).size
    text_x = round(cards._TEXT_X * cards._PNG_DPI / 254)
    assert _ink(png, (text_x, h - 30, w - 40, h - 8)) == 0  # the bottom margin is blank
    layout = cards._layout(pass_, "both", None, cards.ZoneInfo("UTC"))
    assert max(t.y for t in layout if t.x == cards._TEXT_X) <= cards._H - cards._MARGIN


#: The kiosk camera (docs/wiring.md, "Camera"): 640 px across (docs/readers.md) behind a lens
#: of about 62° across (Pi Camera Module 2, a C270-class webcam; a Module 3 sees 66°), the card
#: held at 20 cm, the near end of the 20–40 cm the camera is aimed at.
CAMERA_PX, CAMERA_FOV_DEG, CARD_DISTANCE_MM = 640, 62.0, 200.0


@pytest.mark.slow
def test_a_printed_card_is_read_by_the_kiosk_camera_at_its_distance():
    """Before: the card's code was 37 mm across with its quiet zone (0.59 mm modules on the
    300 dpi PNG): at 20 cm the kiosk's 640 px camera saw it 90 px wide, 1.6 px a module, and
    the reader decoded none of the frames the fake camera renders at that size (a printed card
    with off-white paper, grey toner, a slight tilt, lens blur, noise, JPEG). The code now
    takes the card's height: 10 px modules, 48 mm, about 2.3 px a module there."""
    import math

    from drivers.decoders import build_decoder
    from drivers.fake_camera import SceneParams, render_scene
    from drivers.pipeline import FramePipeline
    from kiosk.clock import FakeClock
    from kiosk.config.readers import DecoderConfig

    png = render_card(PASS, PAYLOAD, "png", tz=SITE)
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    corners = found.position
    symbol_px = math.dist((corners.top_left.x, corners.top_left.y),
                          (corners.top_right.x, corners.top_right.y))  # fmt: skip
    n = len(qr_for(PAYLOAD).matrix)
    module_mm = symbol_px / n * 25.4 / 300  # the symbol's outer corners, 300 dpi
    camera_px_per_mm = CAMERA_PX / (
        2 * CARD_DISTANCE_MM * math.tan(math.radians(CAMERA_FOV_DEG / 2))
    )
    code_px = round((n + 2 * cards._QUIET_MODULES) * module_mm * camera_px_per_mm)
    read = 0
    for seed in range(3):
        scene = SceneParams("paper", code_px, tilt=0.04, rotation_deg=8.0, blur_sigma=0.8,
                            noise_sigma=4.0, gain=0.8, glare=0.0, jpeg_quality=80)  # fmt: skip
        frame = render_scene(PAYLOAD, scene, seed=seed)
        pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), FakeClock())
        read += [c.text for c in pipeline.process(frame, 1)] == [PAYLOAD]
    assert read == 3, f"{code_px} px for the code at {CARD_DISTANCE_MM / 10:g} cm"


@pytest.mark.slow
@pytest.mark.parametrize("turn", ["upside_down", "mirrored", "quarter"])
def test_a_card_held_upside_down_turned_or_seen_mirrored_reads_the_same(turn):
    """docs/passes.md promises it: a card held any way round, or seen from behind through
    a window, is the same payload to the reader's decoder."""
    from PIL import ImageOps

    image = Image.open(io.BytesIO(render_card(PASS, PAYLOAD, "png", tz=SITE))).convert("L")
    seen = {
        "upside_down": image.rotate(180),
        "mirrored": ImageOps.mirror(image),
        "quarter": image.rotate(90, expand=True),
    }[turn]
    assert [r.text for r in zxingcpp.read_barcodes(seen)] == [PAYLOAD]
