"""The pages' Content-Security-Policy allows no inline style (``style-src 'self'`` and, on a
page that draws charts, that response's nonce): 23 ``style=`` attributes in the templates
and the charts' computed aspect ratio kept ``'unsafe-inline'`` in it, so a text injected into
a page could restyle it (hide a warning, overlay a button). Every page of both screens, the
kiosk's and the guard console (its community pages too), is loaded in Chromium with the CSP
enforced: no violation is reported (``securitypolicyviolation``, the console's "Refused to
apply inline style"), and the charts keep the shape of their drawing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from test_browser import DemoThread, wait_idle

pytestmark = pytest.mark.browser

GUARD_PAGES = (
    "/guard",
    "/guard/register",
    "/guard/passes",
    "/guard/lists",
    "/guard/stats",
    "/guard/health",
    "/guard/calibration",
    "/guard/community",
    "/guard/community/map",
    "/guard/community/returnees",
    "/guard/community/services",
    "/guard/community/handover",
    "/guard/community/report",
    "/guard/community/imports",
)

#: Records what the page's CSP refused, before any of the page runs.
LISTEN = """
window.__refused = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__refused.push(`${e.effectiveDirective} ${e.blockedURI} ${e.sample}`);
});
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = DemoThread(tmp_path_factory.mktemp("csp")).start()
    d.play("fever")  # an alarm, a denied passage, charts with bars
    wait_idle(d)
    yield d
    d.stop()


def _watched(browser: Any, width: int = 1366, height: int = 900) -> tuple[Any, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(LISTEN)
    page = context.new_page()
    said: list[str] = []
    page.on(
        "console",
        lambda m: said.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return page, said


def _refused(page: Any, said: list[str]) -> list[str]:
    page.wait_for_load_state("load")
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50)))")
    return [*page.evaluate("() => window.__refused"), *said]


def _sign_in(page: Any, demo: DemoThread) -> None:
    page.goto(f"{demo.url}/guard/login?lang=en")
    assert _refused(page, []) == []
    page.fill("input[name=name]", demo.session.guard_user)
    page.fill("input[name=password]", demo.session.guard_password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/guard(\?.*)?$"))


@pytest.mark.parametrize("width", [1366, 390], ids=["desk", "phone"])
def test_every_guard_page_renders_with_no_inline_style_refused(demo, browser, width):
    page, said = _watched(browser, width, 900 if width > 1000 else 844)
    try:
        _sign_in(page, demo)
        seq = demo.session.core.store.last_seq
        for path in (*GUARD_PAGES, f"/guard/passage/{seq}"):
            page.goto(f"{demo.url}{path}")
            assert page.locator("main").count() == 1, path
            # Before: each of the page's style="" (and every chart's) refused.
            assert _refused(page, said) == [], path
        answer = page.goto(f"{demo.url}/guard/stats")
        policy = answer.headers["content-security-policy"]
        assert "'unsafe-inline'" not in policy
        assert re.search(r"style-src 'self' 'nonce-[A-Za-z0-9_-]{16,}'", policy), policy
    finally:
        page.context.close()


@pytest.mark.parametrize(("width", "wide"), [(1366, 2), (390, 0)])
def test_the_charts_keep_the_shape_of_the_drawing_shown(demo, browser, width, wide):
    page, said = _watched(browser, width, 900)
    try:
        _sign_in(page, demo)
        page.goto(f"{demo.url}/guard/stats")
        assert _refused(page, said) == []
        shapes = page.evaluate(
            """() => [...document.querySelectorAll("svg.chart.fitted")].map((c) => {
                const box = c.getBoundingClientRect();
                const shown = [...c.children].filter(
                    (s) => s.tagName === "svg" && getComputedStyle(s).display !== "none");
                const view = shown[0].viewBox.baseVal;
                return [shown.length, shown[0].classList[0], box.width / box.height,
                        view.width / view.height];
            })"""
        )
        # A chart's card 640 px wide or more shows the wide drawing (the desk's two wide
        # cards), a narrower one the phone's; either way the chart has its drawing's shape.
        assert [s[1] for s in shapes].count("wide") == wide and len(shapes) == 4
        for count, _name, box, drawn in shapes:
            assert count == 1 and box == pytest.approx(drawn, rel=0.02)
    finally:
        page.context.close()


def test_the_kiosk_screen_renders_with_no_inline_style_refused(demo, browser):
    page, said = _watched(browser, 1280, 800)
    try:
        for path in ("/kiosk?lang=en", "/kiosk?lang=zh-CN"):
            answer = page.goto(f"{demo.url}{path}")
            assert "'unsafe-inline'" not in answer.headers["content-security-policy"]
            assert _refused(page, said) == [], path
        demo.play("fever")  # a decision on the screen: the gate's bar, the orbit
        page.wait_for_function("() => document.body.className.includes('k-')")
        assert _refused(page, said) == []
        wait_idle(demo)
    finally:
        page.context.close()


#: The style="" attributes the pages had, by the class that took each one's place.
BEFORE = {
    "fx-80": "flex:1 1 80px",
    "fx-90": "flex:1 1 90px",
    "fx-110": "flex:1 1 110px",
    "fx-120": "flex:1 1 120px",
    "fx-130": "flex:1 1 130px",
    "fx-140": "flex:1 1 140px",
    "fx-150": "flex:1 1 150px",
    "fx-200": "flex:1 1 200px",
    "fx-220": "flex:1 1 220px",
    "fx-full": "flex:1 1 100%",
    "fx2-140": "flex:2 1 140px",
    "fx2-160": "flex:2 1 160px",
    "fx3-220": "flex:3 1 220px",
    "mt-08": "margin-top:.8rem",
    "mt-1": "margin-top:1rem",
    "mb-1": "margin-bottom:1rem",
}


#: The pages compared, and the part of each (None: the whole page).
LOOKS = {
    "/guard": "#manual-form",
    "/guard/register": None,
    "/guard/passes": None,
    "/guard/lists": None,
    "/guard/stats": None,
}


def as_before(page_html: str) -> str:
    """The page as it was sent before: each class above back to its style="", each chart's
    ratio class back to its style="--wide: ...; --phone: ...", no <style nonce>."""

    def restyled(tag: re.Match[str]) -> str:
        classes = tag.group(2).split()
        styles = [BEFORE[c] for c in classes if c in BEFORE]
        for c in classes:
            if ratio := re.fullmatch(r"ratio-(\d+)x(\d+)-(\d+)x(\d+)", c):
                w, h, pw, ph = ratio.groups()
                styles.append(f"--wide: {w} / {h}; --phone: {pw} / {ph}")
        if not styles:
            return tag.group(0)
        kept = " ".join(c for c in classes if c not in BEFORE and not c.startswith("ratio-"))
        return f'{tag.group(1)}class="{kept}" style="{"; ".join(styles)}"'

    page_html = re.sub(r'<style nonce="[^"]*">.*?</style>', "", page_html, flags=re.S)
    return re.sub(r'(<[a-z][a-z0-9]* [^<>]*?)class="([^"]*)"', restyled, page_html)


@pytest.mark.parametrize("width", [1366, 390], ids=["desk", "phone"])
def test_the_pages_look_as_they_did_with_their_inline_styles(demo, browser, width):
    """Each page as served now and as it was (its style="" attributes, 'unsafe-inline'),
    screenshot for screenshot: the same pixels, so docs/screenshots stand."""
    page, said = _watched(browser, width, 900)
    old = {"on": False}

    def serve(route: Any) -> None:
        if not old["on"] or route.request.resource_type != "document":
            route.continue_()
            return
        answer = route.fetch()
        headers = dict(answer.headers)
        headers["content-security-policy"] = re.sub(  # a nonce there turns it off
            r"style-src [^;]*;",
            "style-src 'self' 'unsafe-inline';",
            headers["content-security-policy"],
        )
        route.fulfill(response=answer, body=as_before(answer.text()), headers=headers)

    try:
        _sign_in(page, demo)
        page.route(re.compile(r".*/guard(/[a-z/]*)?(\?.*)?$"), serve)
        # The live page's feed and alarms come after it loads: its manual form is compared.
        for path, part in LOOKS.items():
            shots = []
            for before in (False, True):
                old["on"] = before
                page.goto(f"{demo.url}{path}")
                assert _refused(page, said) == [], path
                assert ("style=" in page.content()) is before, path
                # What pulses (an alarm, the gate's state) is masked: not the same frame twice;
                # so is the statistics' "as of HH:MM", a clock (two shots astride a minute).
                moving = [page.locator(".alarm"), page.locator(".now"), page.locator("#as-of")]
                if part is None:
                    shots.append(
                        page.screenshot(full_page=True, animations="disabled", mask=moving)
                    )
                else:
                    shots.append(page.locator(part).screenshot(animations="disabled"))
            assert shots[0] == shots[1], path
    finally:
        page.context.close()
