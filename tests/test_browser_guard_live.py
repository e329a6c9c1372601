"""The guard's live page when its feed goes quiet, in headless Chromium against a real web
server on the real core: a silent drop (the connection open, nothing coming) used to freeze
the page with no sign and no way back short of a reload."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from test_browser import wait_for
from test_browser_community import serve, sign_in_at

from kiosk.store import EventDraft

pytestmark = pytest.mark.browser

#: Two beats of 15 s and the margin (guard.js): the page's time run past it.
SILENCE_MS = 40_000


@pytest.fixture
def site(tmp_path, monkeypatch) -> Iterator[Any]:
    yield from serve(tmp_path, monkeypatch)


def passage(core) -> int:
    draft = EventDraft(direction="in", decision="pass", reasons=("ok",), holder="Li Wei")
    return core.store.append(draft).seq


def rows(page) -> list[int]:
    return [
        int(s)
        for s in page.eval_on_selector_all("#feed tbody tr", "t => t.map(r => r.dataset.seq)")
    ]


def test_a_silent_drop_is_shown_and_the_feed_comes_back_without_a_gap(site, browser):
    core, url = site
    first = [passage(core), passage(core)]
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    try:
        page.clock.install()  # the page's timers: its silence is run past, not waited for
        sign_in_at(page, f"{url}/guard?lang=en", "#feed")
        wait_for(lambda: page.evaluate("window.guardStreamEvents") or 0)  # the stream is live
        assert rows(page) == first[::-1]
        banner = page.locator("#live-stale")
        assert banner.is_hidden()
        # The network goes quiet: the open stream hears nothing more, a new one never answers.
        held: list[Any] = []

        def hold(route: Any) -> None:
            held.append(route)

        page.route("**/guard/events*", hold)
        page.clock.run_for(SILENCE_MS)
        assert banner.is_visible()
        text = banner.inner_text()
        assert re.fullmatch(r"⚠ Live feed disconnected since \d\d:\d\d - reconnecting\. .*", text)
        assert page.evaluate("document.body.classList.contains('stale')")
        assert page.evaluate("getComputedStyle(document.getElementById('now')).opacity") == "0.4"
        for button in ("button[value=pass]", "button[value=deny]"):
            assert page.locator(f"#manual-form {button}").is_disabled()
        # It closed the quiet stream and opened another, after the last row it shows.
        wait_for(lambda: held)
        assert f"after={first[-1]}" in held[-1].request.url
        # A passage meanwhile; the network comes back.
        later = passage(core)
        for route in held:
            route.continue_()
        page.unroute("**/guard/events*")
        wait_for(lambda: later in rows(page))
        wait_for(banner.is_hidden)
        assert rows(page) == [later, *first[::-1]]  # each once, none missed
        assert not page.evaluate("document.body.classList.contains('stale')")
        assert page.locator("#manual-form button[value=pass]").is_enabled()
    finally:
        context.close()
