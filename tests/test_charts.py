"""SVG charts drawn in Python: bars, values, reference line, histogram bins, escaping."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from ui.charts import Bar, bar_chart, histogram, histogram_bins

SVG = "{http://www.w3.org/2000/svg}"


def _rects(svg: str) -> list[ET.Element]:
    return [e for e in ET.fromstring(svg).iter(SVG + "rect")]


def test_bar_heights_are_proportional_to_values():
    svg = bar_chart([Bar("a", 2), Bar("b", 4), Bar("c", 0)], title="t")
    heights = [float(r.get("height")) for r in _rects(svg)]
    assert heights[2] == 0
    assert heights[1] == pytest.approx(2 * heights[0])


def test_every_nonzero_bar_writes_its_value_so_colour_is_not_needed():
    svg = bar_chart([Bar("a", 3, "pass"), Bar("b", 7, "deny")], title="t")
    values = [e.text for e in ET.fromstring(svg).iter(SVG + "text") if e.get("class") == "value"]
    assert values == ["3", "7"]
    assert 'class="bar bar-pass"' in svg and 'class="bar bar-deny"' in svg


def test_chart_has_an_accessible_title_and_escapes_labels():
    svg = bar_chart([Bar("<script>&", 1)], title='Flow "today" <b>')
    root = ET.fromstring(svg)  # well-formed XML despite the markup in labels
    assert root.get("role") == "img"
    assert root.find(SVG + "title").text == 'Flow "today" <b>'
    assert "<script>" not in svg


def test_reference_line_sits_at_its_value():
    svg = bar_chart([Bar("1", 10)], title="t", reference=5, reference_label="quota", height=240)
    line = next(e for e in ET.fromstring(svg).iter(SVG + "line") if e.get("class") == "reference")
    bar = _rects(svg)[0]
    bar_top, bar_bottom = float(bar.get("y")), float(bar.get("y")) + float(bar.get("height"))
    assert float(line.get("y1")) == pytest.approx((bar_top + bar_bottom) / 2)
    assert "quota 5" in svg


def test_empty_chart_says_so():
    svg = bar_chart([Bar("a", 0)], title="t", empty_text="No data")
    assert "No data" in svg


def test_tone_cannot_inject_attributes():
    svg = bar_chart([Bar("a", 1, 'x" onload="alert(1)')], title="t")
    assert ' onload="' not in svg
    assert 'class="bar bar-xonloadalert1"' in svg


def test_histogram_bins_count_values_and_clamp_outliers_into_the_edges():
    bins = histogram_bins([35.0, 35.05, 36.6, 36.7, 41.0, 20.0], start=35, stop=37, step=0.5)
    assert [round(lo, 1) for lo, _hi, _n in bins] == [35.0, 35.5, 36.0, 36.5]
    assert [n for *_r, n in bins] == [3, 0, 0, 3]


def test_histogram_marks_fever_bins():
    svg = histogram([36.5, 38.0], title="t", start=36, stop=39, step=0.5, threshold=37.5)
    classes = [r.get("class") for r in _rects(svg)]
    assert classes[:3] == ["bar bar-neutral"] * 3
    assert classes[3:] == ["bar bar-fever"] * 3


def test_axis_maximum_is_a_round_number():
    svg = bar_chart([Bar("a", 7)], title="t")
    labels = [e.text for e in ET.fromstring(svg).iter(SVG + "text") if e.get("class") == "axis"]
    assert labels == ["0", "5", "10"]


def test_tallest_bar_leaves_room_for_its_value_label():
    svg = bar_chart([Bar("a", 1)], title="t")
    bar = _rects(svg)[0]
    value = next(e for e in ET.fromstring(svg).iter(SVG + "text") if e.get("class") == "value")
    assert float(value.get("y")) - 12 > 0  # the label's top is inside the picture
    assert float(bar.get("y")) > 22  # the bar does not reach the top grid line


def test_too_small_chart_is_an_error():
    with pytest.raises(ValueError):
        bar_chart([], title="t", width=10)


def test_label_every_thins_out_crowded_labels():
    svg = bar_chart([Bar(f"{h:02d}", h) for h in range(24)], title="t", label_every=3)
    labels = re.findall(r'class="label"[^>]*>(\d\d)<', svg)
    assert labels == [f"{h:02d}" for h in range(0, 24, 3)]
