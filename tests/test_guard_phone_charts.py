"""The statistics charts carry a drawing for a phone (the browser test measures it at 360 px):
one chart, one name, two drawings; on the phone's the reasons in words sit above their bars."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from ui import i18n
from ui.charts import (
    PHONE_LABEL_PX,
    PHONE_WIDTH,
    Bar,
    bar_chart,
    hbar_chart,
    ratio_css,
    text_width,
)

SVG = "{http://www.w3.org/2000/svg}"


def _drawings(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    assert root.get("role") == "img" and "chart" in root.get("class", "").split()
    assert [t.text for t in root.iter(SVG + "title")][:1] == ["t"]  # one name, first
    return {e.get("class"): e for e in root.findall(SVG + "svg")}


def test_a_phone_chart_is_one_picture_with_a_wide_drawing_and_one_a_phone_wide():
    svg = bar_chart([Bar(f"{h:02d}", h) for h in range(24)], title="t", label_every=3, phone=True)
    assert svg.count('class="chart') == 1  # one chart on the page, as before
    drawings = _drawings(svg)
    assert list(drawings) == ["wide", "phone"]
    assert drawings["wide"].get("viewBox") == "0 0 640 240"
    assert drawings["phone"].get("viewBox").split()[2] == str(PHONE_WIDTH)
    # The wide drawing is the chart drawn without a phone's: what the desk and paper show.
    plain = bar_chart([Bar(f"{h:02d}", h) for h in range(24)], title="t", label_every=3)
    inner = re.search(r'<svg class="wide"[^>]*>(.*?)</svg>', svg).group(1)
    assert inner in plain
    # Its shape is its class's (the CSP allows no style=""), set by the page's ratio_css.
    ratio = re.search(r'class="chart fitted ratio-640x240-(\d+)x(\d+)"', svg)
    assert ratio and ratio.group(1) == str(PHONE_WIDTH) and "style=" not in svg
    assert ratio_css(svg, svg) == (
        f"svg.chart.ratio-640x240-{PHONE_WIDTH}x{ratio.group(2)}"
        f" {{ --wide: 640 / 240; --phone: {PHONE_WIDTH} / {ratio.group(2)}; }}"
    )


def test_a_chart_drawn_for_the_desk_only_is_unchanged():
    svg = bar_chart([Bar("a", 1)], title="t")
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox=')
    assert 'class="phone"' not in svg and "fitted" not in svg


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_on_the_phone_every_reason_is_written_whole_above_its_bar(lang):
    codes = ["quota_exceeded", "temp_implausible", "pass_unknown_key", "pass_revoked", "fever"]
    bars = [Bar(i18n.reason_text(lang, c), i + 1, "deny") for i, c in enumerate(codes)]
    phone = _drawings(hbar_chart(bars, title="t", phone=True))["phone"]
    labels = [e for e in phone.iter(SVG + "text") if e.get("class") == "label"]
    rects = list(phone.iter(SVG + "rect"))
    assert [e.text for e in labels] == [b.label for b in bars]
    for label, rect in zip(labels, rects, strict=True):
        x, baseline = float(label.get("x")), float(label.get("y"))
        assert x + text_width(label.text, PHONE_LABEL_PX) <= PHONE_WIDTH  # not cut off
        assert baseline <= float(rect.get("y"))  # above its own bar, not beside it
        assert float(rect.get("x")) <= x  # where the bar starts
    tops = [float(r.get("y")) for r in rects]
    assert all(b - a >= PHONE_LABEL_PX * 2 for a, b in zip(tops, tops[1:], strict=False))


def test_on_the_phone_a_value_that_does_not_fit_its_slot_is_not_written():
    phone = _drawings(
        bar_chart([Bar(f"{h:02d}", 100 + h) for h in range(24)], title="t", phone=True)
    )
    slots = [e for e in phone["phone"].iter(SVG + "text") if e.get("class") == "value"]
    assert slots == []  # 24 bars in 300 units: "123" would run into its neighbours
    wide = [e for e in phone["wide"].iter(SVG + "text") if e.get("class") == "value"]
    assert len(wide) == 24
