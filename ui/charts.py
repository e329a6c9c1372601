"""SVG charts drawn in Python: a bar chart and a histogram, no JS and no vendored library.

The output is a self-contained ``<svg>`` string with a ``<title>`` for screen readers, every
bar's value written on or above it (a chart must be readable without colour), and an optional
horizontal reference line (a household's exit quota). Labels are XML-escaped. Given the
``columns`` of its figures, a chart is followed by ``data_table``: the same figures as a table
a screen reader reads (the picture is one image to it) and nobody sees.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    #: CSS class suffix: "pass", "deny", "fever", "warn", "neutral" (styled in style.css).
    tone: str = "neutral"


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 5 × 10^k)."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        candidate = step * 10**exp
        if candidate >= value:
            return float(candidate)
    return float(10 ** (exp + 1))  # pragma: no cover


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


#: Font size of the labels (style.css ``svg.chart text``), for estimating their width.
LABEL_PX = 11.0

#: The drawing a phone shows (style.css: a chart under 640 px wide): 300 user units wide,
#: about the width of a chart's card on a 360 px phone, so it is drawn near its own size and
#: its 12 px text (``svg.chart > svg.phone text``) stays 11 px or more down to a 320 px phone.
#: The 640-wide drawing shrunk to that card wrote its 11 px text at 5.5 px.
PHONE_WIDTH = 300
PHONE_HEIGHT = 200
PHONE_LABEL_PX = 12.0


@dataclass(frozen=True)
class Drawing:
    """A chart's picture before it is put in its ``<svg>``: its size in user units (the
    viewBox) and its elements."""

    width: int
    height: int
    parts: list[str]


def text_width(text: str, px: float = LABEL_PX) -> float:
    """The width a label takes, estimated: a CJK character is about 1 em, others ~0.6 em."""
    return sum(px if ord(ch) >= 0x2E80 else 0.6 * px for ch in text)


def axis_ticks(top: float, values: Sequence[float]) -> list[float]:
    """The axis labels from 0 to ``top``: 0, half and full scale, except that counts (all
    values whole) never get a fractional tick (a top of 5 is labelled 0, 1, … 5)."""
    whole = all(float(v).is_integer() for v in values)
    if not whole or float(top / 2).is_integer():
        return [0.0, top / 2, top]
    return [float(v) for v in range(int(top) + 1)]


def _value_axis(
    top: float, values: Sequence[float], left: float, top_y: float, plot_h: float, right: float
) -> list[str]:
    """Grid lines and axis labels at 0, 1/2 and full scale (whole numbers for counts)."""
    out = []
    for tick in axis_ticks(top, values):
        y = top_y + plot_h * (1 - tick / top)
        out.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="axis" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_fmt(tick)}</text>"
        )
    return out


def _svg(title: str, drawing: Drawing, css_class: str) -> str:
    """One drawing as a self-contained chart."""
    return "".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" '
            f'viewBox="0 0 {drawing.width} {drawing.height}" role="img" '
            f"aria-label={quoteattr(title)}>",
            f"<title>{escape(title)}</title>",
            *drawing.parts,
            "</svg>",
        ]
    )


def _fitted_svg(title: str, wide: Drawing, phone: Drawing, css_class: str) -> str:
    """One chart (one picture with one name) holding two drawings of it: style.css shows the
    phone's where the chart is under the wide one's width (640 px: its text is then drawn under
    11 px) and the wide one elsewhere, paper included, and
    sizes the chart to the drawing shown (``--wide`` / ``--phone``: its aspect ratio, set for
    its ``ratio-...`` class by the page's ``ratio_css``: the CSP allows no inline style)."""

    def inner(drawing: Drawing, name: str) -> str:
        return (
            f'<svg class="{name}" viewBox="0 0 {drawing.width} {drawing.height}" '
            f'width="100%" height="100%">{"".join(drawing.parts)}</svg>'
        )

    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class} fitted'
        f' ratio-{wide.width}x{wide.height}-{phone.width}x{phone.height}" role="img" '
        f"aria-label={quoteattr(title)}>"
        f"<title>{escape(title)}</title>{inner(wide, 'wide')}{inner(phone, 'phone')}</svg>"
    )


_RATIO = re.compile(r'class="[^"]*\bfitted ratio-(\d+)x(\d+)-(\d+)x(\d+)"')


def ratio_css(*charts: str) -> str:
    """The rules sizing ``charts`` (``bar_chart``/``hbar_chart`` drawn with ``phone``) to
    their drawings, for the page's ``<style nonce>``: each ``ratio-WxH-wxh`` class sets
    ``--wide`` and ``--phone`` (style.css). Digits only: nothing of a chart's text is in it."""
    found = sorted({m.groups() for chart in charts for m in _RATIO.finditer(chart)})
    return "".join(
        f"svg.chart.ratio-{w}x{h}-{pw}x{ph} {{ --wide: {w} / {h}; --phone: {pw} / {ph}; }}"
        for w, h, pw, ph in found
    )


def data_table(title: str, bars: Sequence[Bar], columns: tuple[str, str], empty_text: str) -> str:
    """A chart's figures for a screen reader, after its picture: a table captioned with the
    chart's name, a row per bar (label, value), in a box of a pixel (``sr-only``) so the page
    looks the same. A chart with nothing to draw says its ``empty_text``."""
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in columns)
    if not bars or not any(b.value for b in bars):
        body = f'<tr><td colspan="2">{escape(empty_text)}</td></tr>'
    else:
        body = "".join(
            f'<tr><th scope="row">{escape(b.label)}</th><td>{_fmt(b.value)}</td></tr>' for b in bars
        )
    return (
        f'<div class="sr-only"><table><caption>{escape(title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    width: int = 640,
    height: int = 240,
    reference: float | None = None,
    reference_label: str = "",
    empty_text: str = "—",
    label_every: int = 1,
    phone: bool = False,
    columns: tuple[str, str] | None = None,
) -> str:
    """A vertical bar chart. ``reference`` draws a dashed line (e.g. the quota) across it.
    With ``phone``, the chart also carries its drawing for a phone (``PHONE_WIDTH``). With
    ``columns`` (the label's and the value's headers), its ``data_table`` follows it."""
    if width < 120 or height < 80:
        raise ValueError("chart too small")
    if label_every < 1:
        raise ValueError("label_every must be >= 1")
    table = "" if columns is None else data_table(title, bars, columns, empty_text)
    marks = (reference, reference_label, empty_text, label_every)
    wide = _bars(bars, width, height, marks, LABEL_PX)
    if not phone:
        return _svg(title, wide, "chart") + table
    small = _bars(bars, PHONE_WIDTH, PHONE_HEIGHT, marks, PHONE_LABEL_PX)
    return _fitted_svg(title, wide, small, "chart") + table


def _bars(
    bars: Sequence[Bar],
    width: int,
    height: int,
    marks: tuple[float | None, str, str, int],
    px: float,
) -> Drawing:
    """The vertical bar chart's drawing, its labels ``px`` high (thinned out until they fit)."""
    reference, reference_label, empty_text, label_every = marks
    pad_l, pad_r, pad_t, pad_b = 36, 8, 22, 34
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    values = [max(0.0, float(b.value)) for b in bars]
    # 15 % headroom so the value written above the tallest bar stays inside the plot.
    top = _nice_max(1.15 * max(values + [reference or 0.0, 0.0]))
    out = _value_axis(top, values, pad_l, pad_t, plot_h, width - pad_r)
    if not bars or not any(values):
        out.append(
            f'<text class="empty" x="{width / 2:.1f}" y="{pad_t + plot_h / 2:.1f}" '
            f'text-anchor="middle">{escape(empty_text)}</text>'
        )
    if bars:
        slot = plot_w / len(bars)
        bar_w = max(2.0, slot * 0.72)
        # Labels never overlap: wider labels than their slot are thinned out further.
        widest = max(text_width(b.label, px) for b in bars) + 4
        label_every = max(label_every, math.ceil(widest / slot))
        for i, (bar, value) in enumerate(zip(bars, values, strict=True)):
            x = pad_l + i * slot + (slot - bar_w) / 2
            h = plot_h * value / top
            y = pad_t + plot_h - h
            tone = "".join(ch for ch in bar.tone if ch.isalnum()) or "neutral"
            out.append(
                f'<rect class="bar bar-{tone}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}"><title>{escape(bar.label)}: {_fmt(value)}</title></rect>'
            )
            # A value wider than its slot would run into its neighbour's: not written.
            if value > 0 and slot >= max(14.0, text_width(_fmt(value), px)):
                out.append(
                    f'<text class="value" x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" '
                    f'text-anchor="middle">{_fmt(value)}</text>'
                )
            if i % label_every == 0:
                out.append(
                    f'<text class="label" x="{x + bar_w / 2:.1f}" y="{height - pad_b + 16}" '
                    f'text-anchor="middle">{escape(bar.label)}</text>'
                )
    if reference is not None and reference > 0:
        y = pad_t + plot_h * (1 - reference / top)
        out.append(
            f'<line class="reference" x1="{pad_l}" y1="{y:.1f}" x2="{width - pad_r}" y2="{y:.1f}"/>'
        )
        out.append(
            f'<text class="reference-label" x="{width - pad_r}" y="{y - 4:.1f}" '
            f'text-anchor="end">{escape(reference_label)} {_fmt(reference)}</text>'
        )
    out.append(
        f'<line class="axis-line" x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - pad_r}" '
        f'y2="{pad_t + plot_h}"/>'
    )
    return Drawing(width, height, out)


def hbar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    width: int = 640,
    row_h: int = 26,
    empty_text: str = "—",
    phone: bool = False,
    columns: tuple[str, str] | None = None,
) -> str:
    """A horizontal bar chart: one row per bar, however many, each label on its own line
    left of its bar (long labels such as reasons in words never overlap), the value after
    the bar, whole-number ticks for counts. With ``phone``, the chart also carries its
    drawing for a phone (``PHONE_WIDTH``), where each label is written above its bar: the
    width left of the bars would not hold a reason in words at a size one can read. With
    ``columns`` (the label's and the value's headers), its ``data_table`` follows it."""
    if width < 200 or row_h < 14:
        raise ValueError("chart too small")
    table = "" if columns is None else data_table(title, bars, columns, empty_text)
    wide = _hbars(bars, width, row_h, empty_text, LABEL_PX)
    if not phone:
        return _svg(title, wide, "chart hbar") + table
    row = round(PHONE_LABEL_PX + 3 + 0.55 * row_h + 8)  # the label's line, its bar, a gap
    small = _hbars(bars, PHONE_WIDTH, row, empty_text, PHONE_LABEL_PX, labels_above=True)
    return _fitted_svg(title, wide, small, "chart hbar") + table


def _hbars(
    bars: Sequence[Bar],
    width: int,
    row_h: int,
    empty_text: str,
    px: float,
    labels_above: bool = False,
) -> Drawing:
    """The horizontal bar chart's drawing, its labels ``px`` high, left of each bar or above."""
    values = [max(0.0, float(b.value)) for b in bars]
    if labels_above:
        # The left margin holds half of the axis's first number, centred under the bars' start.
        label_w, bar_t, bar_h = 8.0, px + 3, row_h - px - 11  # 8 below: the next row's label
    else:
        label_w = min(width * 0.45, max([text_width(b.label, px) for b in bars] + [40.0]) + 10)
        bar_t, bar_h = row_h * 0.15, row_h * 0.7
    pad_t, pad_b, pad_r = 8, 22, 28
    height = pad_t + max(1, len(bars)) * row_h + pad_b
    x0, plot_w = label_w, width - label_w - pad_r
    top = _nice_max(max(values + [0.0]))
    base = pad_t + max(1, len(bars)) * row_h
    out = []
    for tick in axis_ticks(top, values):
        x = x0 + plot_w * tick / top
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{pad_t}" x2="{x:.1f}" y2="{base}"/>')
        out.append(
            f'<text class="axis" x="{x:.1f}" y="{base + 15}" text-anchor="middle">'
            f"{_fmt(tick)}</text>"
        )
    if not bars or not any(values):
        out.append(
            f'<text class="empty" x="{width / 2:.1f}" y="{pad_t + row_h * 0.7:.1f}" '
            f'text-anchor="middle">{escape(empty_text)}</text>'
        )
    for i, (bar, value) in enumerate(zip(bars, values, strict=True)):
        y = pad_t + i * row_h
        w = plot_w * value / top
        tone = "".join(ch for ch in bar.tone if ch.isalnum()) or "neutral"
        middle = y + bar_t + bar_h / 2 + px * 0.35  # a baseline centring the text on the bar
        out.append(
            f'<text class="label" x="{x0 + 3:.1f}" y="{y + px:.1f}">{escape(bar.label)}</text>'
            if labels_above
            else f'<text class="label" x="{x0 - 6:.1f}" y="{y + row_h * 0.65:.1f}" '
            f'text-anchor="end">{escape(bar.label)}</text>'
        )
        out.append(
            f'<rect class="bar bar-{tone}" x="{x0:.1f}" y="{y + bar_t:.1f}" '
            f'width="{w:.1f}" height="{bar_h:.1f}"><title>{escape(bar.label)}: '
            f"{_fmt(value)}</title></rect>"
        )
        out.append(
            f'<text class="value" x="{x0 + w + 4:.1f}" '
            f'y="{middle if labels_above else y + row_h * 0.65:.1f}">{_fmt(value)}</text>'
        )
    out.append(f'<line class="axis-line" x1="{x0}" y1="{pad_t}" x2="{x0}" y2="{base}"/>')
    return Drawing(width, height, out)


def histogram_bins(
    values: Sequence[float], *, start: float, stop: float, step: float
) -> list[tuple[float, float, int]]:
    """Counts of ``values`` in ``[lo, hi)`` bins from ``start`` to ``stop``; values outside the
    range are counted in the first or last bin so nothing measured disappears from the chart."""
    if step <= 0 or stop <= start:
        raise ValueError("need start < stop and step > 0")
    n = max(1, round((stop - start) / step))
    counts = [0] * n
    for v in values:
        if v is None or not math.isfinite(v):
            continue
        i = math.floor((v - start) / step + 1e-9)
        counts[min(max(i, 0), n - 1)] += 1
    return [(start + i * step, start + (i + 1) * step, counts[i]) for i in range(n)]


def histogram(
    values: Sequence[float],
    *,
    title: str,
    start: float = 35.0,
    stop: float = 39.0,
    step: float = 0.2,
    threshold: float | None = None,
    width: int = 640,
    height: int = 240,
    empty_text: str = "—",
) -> str:
    """A histogram of ``values``; bins at or above ``threshold`` (fever) are drawn as fever."""
    bins = histogram_bins(values, start=start, stop=stop, step=step)
    bars = [
        Bar(
            f"{lo:.1f}",
            count,
            "fever" if threshold is not None and lo + 1e-9 >= threshold else "neutral",
        )
        for lo, _hi, count in bins
    ]
    return bar_chart(
        bars,
        title=title,
        width=width,
        height=height,
        empty_text=empty_text,
        label_every=max(1, len(bars) // 10),
    )
