"""The guard console on a phone in Chromium against the real daemon on fakes: every entry of
the console's navigation is on the screen, whole, without scrolling, in both languages, and
the Community entry opens its page."""

from __future__ import annotations

from typing import Any

import pytest
from test_browser import DemoThread, shot, shots_folder  # noqa: F401 (shots_folder: autouse)
from test_guard_screens_browser import signed_in

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
NAV = ["/guard", "/guard/register", "/guard/passes", "/guard/lists", "/guard/stats",
       "/guard/health", "/guard/calibration", "/guard/community"]  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = DemoThread(tmp_path_factory.mktemp("guard-phone")).start()
    yield d
    d.stop()


def nav_boxes(page: Any) -> dict[str, dict[str, float]]:
    """Each navigation link's box on the screen (``visible``: not clipped by its bar)."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.g-nav a')].map(a => {
            const r = a.getBoundingClientRect(), bar = a.parentElement.getBoundingClientRect();
            return [a.getAttribute('href'), {x: r.x, y: r.y, w: r.width, h: r.height,
              inBar: r.left >= bar.left - 0.5 && r.right <= bar.right + 0.5,
              whole: a.scrollWidth <= a.clientWidth}];
        }))"""
    )


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_nav_entry_is_on_a_phone_screen_without_scrolling(demo, browser, lang):
    page = signed_in(browser, demo, f"/guard/health?lang={lang}", **PHONE)
    page.evaluate("window.scrollTo(0, 0)")
    boxes = nav_boxes(page)
    assert list(boxes) == NAV
    for href, box in boxes.items():
        assert box["inBar"], (href, box)  # not cut off inside a bar that scrolls sideways
        assert box["whole"], (href, box)  # its words are not cut off either
        assert box["x"] >= 0 and box["x"] + box["w"] <= PHONE["width"], (href, box)
        assert box["y"] >= 0 and box["y"] + box["h"] <= PHONE["height"] / 3, (href, box)
        assert box["h"] >= 24  # a finger can hit it
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) <= 0
    page.locator(".g-nav a[href='/guard/community']").click()
    page.wait_for_url("**/guard/community")
    assert page.locator(".g-nav a.on").get_attribute("href") == "/guard/community"
    page.context.close()
