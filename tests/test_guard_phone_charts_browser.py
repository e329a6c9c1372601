"""The statistics page's charts on a 360×740 phone, in Chromium against the real daemon on
fakes: every word and number of every chart is drawn at 11 CSS px or more (the text's font
size times the scale the SVG is drawn at), inside the screen, no two labels overlapping, and
the page does not scroll sideways, in both languages."""

from __future__ import annotations

from typing import Any

import pytest
from test_browser import DemoThread, shots_folder, wait_idle  # noqa: F401 (shots_folder: autouse)
from test_guard_phone_browser import PHONE
from test_guard_screens_browser import signed_in

pytestmark = pytest.mark.browser

#: The smallest chart text a guard reads on a phone held at arm's length (the desktop's 11 px).
MIN_TEXT_PX = 11.0

#: Every chart text the guard can see: its rendered font size (the computed size in the SVG's
#: user units times the scale from user units to screen pixels) and its box on the screen.
CHART_TEXTS = """() => [...document.querySelectorAll('svg.chart')]
  .filter((svg) => svg.getClientRects().length)
  .map((svg) => [...svg.querySelectorAll('text')].filter((t) => t.getClientRects().length)
    .map((t) => {
      const box = t.getBoundingClientRect(), ctm = t.getScreenCTM();
      return {text: t.textContent, cls: t.getAttribute('class'),
              px: parseFloat(getComputedStyle(t).fontSize) * Math.hypot(ctm.a, ctm.b),
              box: [box.left, box.top, box.right, box.bottom]};
    }))"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = DemoThread(tmp_path_factory.mktemp("guard-phone-charts")).start()
    for scenario in ("fever", "expired", "unknown_key", "not_yet_valid", "ok"):
        d.play(scenario)
        wait_idle(d)
    yield d
    d.stop()


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


def chart_texts(page: Any) -> list[list[dict[str, Any]]]:
    return page.evaluate(CHART_TEXTS)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_statistics_charts_are_readable_on_a_phone(demo, browser, lang):
    page = signed_in(browser, demo, f"/guard/stats?lang={lang}", **PHONE)
    charts = chart_texts(page)
    assert len(charts) == 4 and all(charts), charts  # four charts, each with its words
    reasons = [t["text"] for t in charts[2] if t["cls"] == "label"]
    assert len(reasons) >= 3, reasons  # the day's denies, by reason in words
    sizes = sorted(t["px"] for chart in charts for t in chart)
    print(f"{lang}: chart text {sizes[0]:.1f}–{sizes[-1]:.1f} px on a 360 px phone")
    for chart in charts:
        for t in chart:
            assert t["px"] >= MIN_TEXT_PX, t
            left, _top, right, _bottom = t["box"]
            assert left >= 0 and right <= PHONE["width"], t  # on the screen, not cut off
        labels = [t["box"] for t in chart if t["cls"] in ("label", "value", "axis")]
        for i, a in enumerate(labels):
            assert not any(_overlap(a, b) for b in labels[i + 1 :]), (chart, a)
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) <= 0
    page.context.close()
