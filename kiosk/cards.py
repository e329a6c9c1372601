"""Printable pass cards (SVG or PNG) for people without a phone.

A card is ID-1 size (85.6 x 54 mm, fits a wallet and a badge holder): the pass QR on the
left, and on the right the household, holder, role and validity in Chinese and English, so
a guard who reads either language can check the card against the person. The QR carries the
exact payload ``kiosk pass issue`` printed, at error correction Q (a scuffed card still
scans) and never above version 8 (``kiosk.passes`` guarantees the fit).

SVG needs no fonts on the machine that *makes* it (the printer's browser renders the text);
PNG is rendered here with Pillow and needs a CJK font. We look for one at run time
(``KIOSK_CJK_FONT``, then the usual font folders, then ``fc-list``); if none is found the PNG
falls back to English only and says so with a ``CardFallbackWarning``, never a card with
empty boxes where the Chinese should be.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import unicodedata
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import segno

from .passes import Pass

if TYPE_CHECKING:
    from PIL import ImageFont

__all__ = ["CardError", "CardFallbackWarning", "find_cjk_font", "qr_for", "render_card"]

Lang = Literal["both", "zh-CN", "en"]
Fmt = Literal["svg", "png"]

CARD_W_MM, CARD_H_MM = 85.6, 54.0
_QUIET_MODULES = 4  # the QR standard asks for 4 modules of white around the symbol
_PNG_DPI = 300

ROLE_NAMES = {
    "resident": ("居民", "Resident"),
    "staff": ("工作人员", "Staff"),
    "delivery": ("配送", "Delivery"),
    "visitor": ("访客", "Visitor"),
}
FLAG_NAMES = {
    "gate_issued": ("门岗签发", "Issued at gate"),
    "observation": ("观察期", "Under observation"),
    "escort": ("需陪同", "Escort required"),
}
LABELS = {
    "title": ("出入通行证", "Entry pass"),
    "household": ("户号", "Household"),
    "holder": ("持证人", "Holder"),
    "role": ("身份", "Role"),
    "valid": ("有效期", "Valid"),
}

_FONT_NAMES = (
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKsc-Regular.otf",
    "NotoSansSC-Regular.otf",
    "NotoSansSC-Regular.ttf",
    "SourceHanSansSC-Regular.otf",
    "wqy-microhei.ttc",
    "wqy-zenhei.ttc",
    "DroidSansFallbackFull.ttf",
)
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")


class CardError(Exception):
    """A card that cannot be produced (unknown format, Pillow missing)."""


class CardFallbackWarning(UserWarning):
    """The PNG card was printed without Chinese because no CJK font was found."""


def qr_for(payload: str) -> segno.QRCode:
    """The card's QR: error correction Q exactly (no boost), micro codes off."""
    return segno.make(payload, error="q", boost_error=False, micro=False)


def _texts(pass_: Pass, lang: Lang, tz: ZoneInfo) -> list[tuple[str, str]]:
    """(label, value) lines in the chosen language(s)."""
    zh, en = lang in ("both", "zh-CN"), lang in ("both", "en")

    def label(key: str) -> str:
        cn, english = LABELS[key]
        return " ".join(x for x, on in ((cn, zh), (english, en)) if on)

    def pair(names: tuple[str, str]) -> str:
        return " ".join(x for x, on in ((names[0], zh), (names[1], en)) if on)

    start = pass_.valid_from.astimezone(tz)
    until = pass_.valid_until.astimezone(tz)
    fmt = "%Y-%m-%d %H:%M"
    if (start.hour, start.minute, until.hour, until.minute) == (0,) * 4:
        # Dates only: the range names the days the pass opens the gate, the last one the
        # day before the midnight it ends at (the gate refuses it from that midnight).
        fmt, until = "%Y-%m-%d", until - timedelta(days=1)
    lines = [
        (label("household"), pass_.household),
        (label("holder"), pass_.holder),
        (label("role"), pair(ROLE_NAMES[pass_.role])),
        (label("valid"), f"{start.strftime(fmt)} –\n{until.strftime(fmt)}"),
    ]
    for flag in pass_.flags:
        if flag in FLAG_NAMES and flag != "gate_issued":
            lines.append(("", pair(FLAG_NAMES[flag])))
    return lines


def _title(lang: Lang, site_name: str | None) -> str:
    cn, en = LABELS["title"]
    title = {"both": f"{cn} {en}", "zh-CN": cn, "en": en}[lang]
    return f"{site_name} · {title}" if site_name else title


def render_card(
    pass_: Pass,
    payload: str,
    fmt: Fmt = "svg",
    lang: Lang = "both",
    *,
    site_name: str | None = None,
    tz: ZoneInfo | str,
    font_path: str | Path | None = None,
) -> bytes:
    """Render a printable card. ``tz`` is the site's zone (validity is shown in local time),
    always given: a card dated in another zone than the gate's is read wrong.

    ``font_path`` overrides the CJK font search for PNG (tests, unusual systems)."""
    if lang not in ("both", "zh-CN", "en"):
        raise CardError(f"unknown card language {lang!r}; use both, zh-CN or en")
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    if fmt == "svg":
        return _svg(pass_, payload, lang, site_name, zone)
    if fmt == "png":
        return _png(pass_, payload, lang, site_name, zone, font_path)
    raise CardError(f"unknown card format {fmt!r}; use svg or png")


# --------------------------------------------------------------------------- layout

_W, _H = CARD_W_MM * 10, CARD_H_MM * 10  # layout units: 0.1 mm
_MARGIN = 30.0
#: The code with its quiet zone takes the card's height (50 mm, the quiet zone reaching into
#: the margin: it is white paper too): 0.85 mm modules at version 8, which the kiosk's
#: 640 px camera sees at 2.3 px a module from 20 cm, where a 37 mm code was not read.
_QR_SIZE = 500.0
_QR_LEFT = _QR_TOP = (_H - _QR_SIZE) / 2
_TEXT_X = _QR_LEFT + _QR_SIZE + 15.0


@dataclass(frozen=True)
class _Text:
    x: float
    y: float  # baseline
    size: float
    text: str
    grey: int = 0  # 0 black .. 255 white
    bold: bool = False
    mono: bool = False
    width: float = 0.0  # the room it has (0: as it comes); the PNG measures it in its font


#: Latin letters as wide as an em in the fonts a card is drawn with (DejaVu, Noto).
_WIDE = frozenset("MWmw@%")


def _ems(ch: str) -> float:
    """A width no narrower than the card's fonts draw ``ch`` (in ems): CJK and the characters
    CJK fonts draw full width (``·``, ``–``) an em, wide Latin letters an em, capitals 0.75,
    the rest 0.65 (DejaVu's lower case and digits are 0.6 to 0.64)."""
    if unicodedata.east_asian_width(ch) in ("W", "F", "A") or ch in _WIDE:
        return 1.0
    return 0.75 if ch.isupper() else 0.65


def _fit(text: str, size: float, width: float) -> float:
    """Shrink the font so the text fits ``width``, however small that makes it: a line cut
    off at the card's edge is worse than a small one."""
    ems = sum(_ems(ch) for ch in text)
    return size if ems * size <= width else width / ems


#: The pass id line's baseline, and the lowest the fields above it may reach (their
#: descenders and the id's capitals between them).
_IDENT_Y = _H - _MARGIN - 6
_TEXT_BOTTOM = _IDENT_Y - 26


def _layout(pass_: Pass, lang: Lang, site_name: str | None, tz: ZoneInfo) -> list[_Text]:
    width = _W - _TEXT_X - _MARGIN
    items, top = [], _MARGIN + 30.0
    for head in (site_name, _title(lang, None)):  # the site, then what the card is
        if head:
            items.append(_Text(_TEXT_X, top, _fit(head, 30, width), head, bold=True, width=width))
            top += 36
    lines = _texts(pass_, lang, tz)
    top += 22
    # Each labelled field takes a label line and its value lines, then a gap; when they do
    # not fit above the margin (both flags), the lines close up evenly.
    need = sum((34 if label else 0) + 34 * len(value.split("\n")) + 14 for label, value in lines)
    pitch = min(1.0, (_TEXT_BOTTOM - top) / (need - 48))  # the last line's own step and gap
    y = top
    for label, value in lines:
        if label:
            items.append(_Text(_TEXT_X, y, 17, label, grey=90, width=width))
            y += 34 * pitch
        for part in value.split("\n"):
            items.append(_Text(_TEXT_X, y, _fit(part, 27, width), part, width=width))
            y += 34 * pitch
        y += 14 * pitch
    ident = f"No. {pass_.pass_id} · key {pass_.key_id}"
    items.append(
        _Text(_TEXT_X, _IDENT_Y, _fit(ident, 15, width), ident, grey=100, mono=True, width=width)
    )
    return items


# --------------------------------------------------------------------------- SVG


def _qr_path(matrix: tuple[bytearray, ...], x0: float, y0: float, module: float) -> str:
    """One SVG subpath per horizontal run of dark modules (small and crisp when printed)."""
    parts = []
    for y, row in enumerate(matrix):
        x = 0
        width = len(row)
        while x < width:
            if row[x]:
                run = x
                while run < width and row[run]:
                    run += 1
                parts.append(
                    f"M{x0 + x * module:.2f} {y0 + y * module:.2f}"
                    f"h{(run - x) * module:.2f}v{module:.2f}h{-(run - x) * module:.2f}z"
                )
                x = run
            else:
                x += 1
    return "".join(parts)


def _svg(pass_: Pass, payload: str, lang: Lang, site_name: str | None, tz: ZoneInfo) -> bytes:
    qr = qr_for(payload)
    module = _QR_SIZE / (len(qr.matrix) + 2 * _QUIET_MODULES)
    origin = _QUIET_MODULES * module
    fonts = "'Noto Sans CJK SC','Source Han Sans SC','WenQuanYi Micro Hei',sans-serif"
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CARD_W_MM}mm" height="{CARD_H_MM}mm"'
        f' viewBox="0 0 {_W:g} {_H:g}" font-family="{fonts}">',
        f"<title>{escape(_title(lang, site_name))}</title>",
        f'<rect x="2" y="2" width="{_W - 4:g}" height="{_H - 4:g}" rx="30" fill="#fff"'
        ' stroke="#000" stroke-width="3"/>',
        f'<path d="{_qr_path(qr.matrix, _QR_LEFT + origin, _QR_TOP + origin, module)}"'
        ' fill="#000" shape-rendering="crispEdges"/>',
    ]
    for t in _layout(pass_, lang, site_name, tz):
        attrs = f'x="{t.x:g}" y="{t.y:g}" font-size="{t.size:.1f}"'
        if t.grey:
            attrs += f' fill="#{t.grey:02x}{t.grey:02x}{t.grey:02x}"'
        if t.bold:
            attrs += ' font-weight="bold"'
        if t.mono:
            attrs += ' font-family="monospace"'
        out.append(f"<text {attrs}>{escape(t.text)}</text>")
    out.append("</svg>")
    return ("\n".join(out) + "\n").encode("utf-8")


# --------------------------------------------------------------------------- PNG


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> Path | None:
    """A font file with Chinese glyphs, or None. Searched at run time, never assumed."""
    env = os.environ.get("KIOSK_CJK_FONT")
    if env and Path(env).is_file():
        return Path(env)
    for folder in _FONT_DIRS:
        root = Path(folder).expanduser()
        if not root.is_dir():
            continue
        for name in _FONT_NAMES:
            found = next(iter(sorted(root.rglob(name))), None)
            if found is not None:
                return found
    fc_list = shutil.which("fc-list")
    if fc_list:
        try:
            listing = subprocess.run(
                [fc_list, ":lang=zh-cn", "file"], capture_output=True, text=True, timeout=5
            ).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        files = sorted(line.split(":")[0].strip() for line in listing.splitlines() if line)
        if files:
            return Path(files[0])
    return None


def _load_font(path: Path | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    if path is None:
        return ImageFont.load_default(size=size)
    # A .ttc holds several faces (JP, KR, SC, TC...); pick Simplified Chinese when present.
    first = None
    for index in range(10):
        try:
            font = ImageFont.truetype(str(path), size=size, index=index)
        except OSError:
            break
        first = first or font
        if " SC" in (font.getname()[0] or ""):
            return font
    if first is None:
        raise CardError(f"cannot load font {path}")
    return first


#: Punctuation a font may lack (Pillow's own font has no en dash) and what stands for it.
_STAND_INS = {"–": "-"}


def _lacks(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, ch: str) -> bool:
    """Whether ``font`` draws ``ch`` as its missing-glyph box (the glyph of a noncharacter)."""
    box, mask = font.getmask("\U0010ffff"), font.getmask(ch)
    return bool(mask.size == box.size and bytes(mask) == bytes(box))


def _drawable(
    text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, font_file: Path | None
) -> str:
    """``text`` as ``font`` can draw it, or ``CardError`` naming the first character it would
    print as an empty box: a name the guard cannot read is no card to check a person by."""
    for ch in dict.fromkeys(text):
        if ch.isspace() or not _lacks(font, ch):
            continue
        if ch in _STAND_INS:
            text = text.replace(ch, _STAND_INS[ch])
            continue
        what = f"its font {font_file.name}" if font_file else "no CJK font was found and Pillow's"
        fix = (
            "set KIOSK_CJK_FONT to a font that has it"
            if font_file
            else "install fonts-noto-cjk or set KIOSK_CJK_FONT"
        )
        raise CardError(
            f"the PNG card cannot draw {ch} (U+{ord(ch):04X}): {what} has no such character;"
            f" {fix}, or print the SVG card (the printing browser's fonts)"
        )
    return text


def _png(
    pass_: Pass,
    payload: str,
    lang: Lang,
    site_name: str | None,
    tz: ZoneInfo,
    font_path: str | Path | None,
) -> bytes:
    try:
        from PIL import Image, ImageDraw
    except ImportError:  # pragma: no cover - Pillow is a dependency of the card feature
        raise CardError("PNG cards need Pillow (pip install pillow); SVG works without") from None
    font_file = Path(font_path) if font_path is not None else find_cjk_font()
    if font_file is None and lang != "en":
        warnings.warn(
            CardFallbackWarning(
                "no CJK font found (install fonts-noto-cjk or set KIOSK_CJK_FONT);"
                " the PNG card is printed in English only"
            ),
            stacklevel=3,
        )
        lang = "en"
    scale = _PNG_DPI / 25.4 / 10  # layout units (0.1 mm) to pixels
    w, h = round(_W * scale), round(_H * scale)
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((2, 2, w - 3, h - 3), radius=round(30 * scale), outline=0, width=3)
    qr = qr_for(payload)
    n = len(qr.matrix) + 2 * _QUIET_MODULES
    module = round(_QR_SIZE * scale) // n  # whole pixels per module keep the QR sharp
    x_off = round(_QR_LEFT * scale) + _QUIET_MODULES * module
    y_off = round(_QR_TOP * scale) + _QUIET_MODULES * module
    for y, row in enumerate(qr.matrix):
        for x, dark in enumerate(row):
            if dark:
                x0, y0 = x_off + x * module, y_off + y * module
                draw.rectangle((x0, y0, x0 + module - 1, y0 + module - 1), fill=0)
    bold_file = font_file
    if font_file is not None and "Regular" in font_file.name:
        sibling = font_file.with_name(font_file.name.replace("Regular", "Bold"))
        bold_file = sibling if sibling.is_file() else font_file
    for t in _layout(pass_, lang, site_name, tz):
        font = _load_font(bold_file if t.bold else font_file, max(6, round(t.size * scale)))
        text = _drawable(t.text, font, font_file)
        room = t.width * scale
        if room and font.getlength(text) > room:  # the font's own measure, to the pixel
            size = max(6, int(round(t.size * scale) * room / font.getlength(text)))
            font = _load_font(bold_file if t.bold else font_file, size)
        draw.text((t.x * scale, t.y * scale), text, font=font, fill=t.grey, anchor="ls")
    buf = io.BytesIO()
    img.save(buf, format="PNG", dpi=(_PNG_DPI, _PNG_DPI), optimize=True)
    return buf.getvalue()


def card_format_for(path: str | Path) -> Fmt:
    """``svg`` or ``png`` from a file name (CLI ``--out``)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".svg":
        return "svg"
    if suffix == ".png":
        return "png"
    raise CardError(f"card file must end in .svg or .png, not {suffix or '(nothing)'}")
