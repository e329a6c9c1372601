"""The statistics page's charts at every screen width a guard's phone, tablet or desk screen
has, in Chromium against the real daemon on fakes: every word and number of every chart is
drawn at 11 CSS px or more (its font size times the scale the SVG is drawn at) and no two
labels overlap. Screens 601 to 680 px wide once got the wide drawing shrunk to text under
11 px (the phone's drawing stopped at 600 px)."""

from __future__ import annotations

import pytest
from test_browser import shots_folder, wait_idle  # noqa: F401 (shots_folder: autouse)
from test_guard_phone_charts_browser import MIN_TEXT_PX, _overlap, chart_texts, demo  # noqa: F401
from test_guard_screens_browser import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Phones (portrait and landscape), the widths around the phone drawing's edge, tablets,
#: laptops and desk screens up to full HD.
WIDTHS = (320, 360, 414, 480, 568, 600, 601, 620, 640, 660, 680, 700, 740, 768, 800, 834,
          900, 901, 960, 1024, 1100, 1180, 1280, 1366, 1440, 1600, 1920)  # fmt: skip


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_statistics_charts_are_readable_at_every_width(demo, browser, lang):  # noqa: F811
    page = signed_in(browser, demo, f"/guard/stats?lang={lang}", width=WIDTHS[0], height=800)
    small: list[str] = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        charts = chart_texts(page)
        assert len(charts) == 4 and all(charts), (width, charts)
        least = min(t["px"] for chart in charts for t in chart)
        print(f"{lang} {width} px: smallest chart text {least:.1f} px")
        small += [f"{width} px: {t['text']!r} at {t['px']:.1f} px"
                  for chart in charts for t in chart if t["px"] < MIN_TEXT_PX]  # fmt: skip
        for chart in charts:
            labels = [t["box"] for t in chart if t["cls"] in ("label", "value", "axis")]
            for i, a in enumerate(labels):
                assert not any(_overlap(a, b) for b in labels[i + 1 :]), (width, chart, a)
    assert not small, small[:12]
    page.context.close()
