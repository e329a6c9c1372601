"""The guard's live page when its feed goes quiet, in headless Chromium against a real web
server on the real core: a silent drop (the connection open, nothing coming) used to freeze
the page with no sign and no way back short of a reload."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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


@contextlib.contextmanager
def live_console(
    browser,
    url: str,
    *,
    lang: str = "en",
    clock: bool = True,
    init_script: str = "",
    tablet_at: datetime | None = None,
    **tablet: Any,
) -> Iterator[Any]:
    """The guard's live page signed in, its stream live; ``clock``: the page's timers are the
    test's (its silence run past, not waited for); ``tablet_at``: the tablet's own wall clock,
    ``tablet``: more of its browser's (``timezone_id``)."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, **tablet)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    try:
        if clock:
            page.clock.install(**({"time": tablet_at} if tablet_at else {}))
        sign_in_at(page, f"{url}/guard?lang={lang}", "#feed")
        wait_for(lambda: page.evaluate("window.guardStreamEvents") or 0)  # the stream is live
        yield page
    finally:
        context.close()


def rows(page) -> list[int]:
    return [
        int(s)
        for s in page.eval_on_selector_all("#feed tbody tr", "t => t.map(r => r.dataset.seq)")
    ]


def test_a_silent_drop_is_shown_and_the_feed_comes_back_without_a_gap(site, browser):
    core, url = site
    first = [passage(core), passage(core)]
    with live_console(browser, url) as page:
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


def _drop_while(page, during) -> None:
    """The network goes quiet until the page reopens its stream; ``during()`` happens
    meanwhile; then it comes back."""
    held: list[Any] = []
    page.route("**/guard/events*", lambda route: held.append(route))
    page.clock.run_for(SILENCE_MS)
    # Polled through the page: Playwright hands a route over only while it is called.
    wait_for(lambda: page.evaluate("true") and held)
    during()
    for route in held:
        route.continue_()
    page.unroute("**/guard/events*")


def test_a_drop_through_a_rush_shows_every_row_of_it(site, browser):
    """Sixty passages while the Wi-Fi was down (the morning rush): every one is shown when the
    feed comes back (before 2026-12-06 the newest 50: ten missed, nothing said)."""
    core, url = site
    first = [passage(core), passage(core)]
    with live_console(browser, url) as page:
        gap: list[int] = []
        _drop_while(page, lambda: gap.extend(passage(core) for _ in range(60)))
        wait_for(lambda: gap[-1] in rows(page))
        wait_for(page.locator("#live-stale").is_hidden)
        assert rows(page) == [*gap[::-1], *first[::-1]]
        assert page.locator("#feed-gap").is_hidden()


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("en", "7 rows from while the feed was disconnected are not shown: see them"),
        ("zh", "断线期间另有 7 条记录未显示： 查看这些记录"),
    ],
)
def test_a_drop_longer_than_the_page_keeps_says_how_many_rows_are_not_shown(
    site, browser, lang, said
):
    """More passages while it was down than the page keeps (200): the newest 200 and a line
    saying how many are not shown, never a silent hole; its link takes the guard to them, the
    rows from the first missed on (before 2026-12-06 it said "reload", which drew the newest
    50: the missed rows were in the log, the guard never brought to them)."""
    core, url = site
    passage(core)
    with live_console(browser, url, lang=lang) as page:
        gap: list[int] = []
        _drop_while(page, lambda: gap.extend(passage(core) for _ in range(207)))
        wait_for(lambda: gap[-1] in rows(page))
        assert rows(page) == gap[::-1][:200]
        notice = page.locator("#feed-gap")
        assert notice.is_visible()
        assert " ".join(notice.inner_text().split()) == said
        missed = gap[:7]
        assert not set(missed) & set(rows(page))
        assert notice.locator("a").get_attribute("href") == f"/guard/rows/{missed[0]}"
        notice.locator("a").click()
        page.wait_for_selector("#rows")
        shown = page.eval_on_selector_all("#rows tbody tr", "t => t.map(r => +r.dataset.seq)")
        assert shown == gap[:50]  # the missed rows first, as they happened, then the next
        assert page.locator("#rows-next").get_attribute("href") == f"/guard/rows/{gap[50]}"


@pytest.fixture
def short_site(tmp_path, monkeypatch) -> Iterator[Any]:
    """The console sending a resuming stream at most 5 rows (a gap at 6, cheaply)."""
    import ui.guard.live

    monkeypatch.setattr(ui.guard.live, "PAGE_ROWS", 5)
    yield from serve(tmp_path, monkeypatch)


def test_a_second_long_drop_adds_its_rows_and_the_link_stays_on_the_first(short_site, browser):
    """Two drops, each longer than the server sends: the line counts both gaps' rows and its
    link stays on the first row of the first, the rows from it on."""
    core, url = short_site
    passage(core)
    with live_console(browser, url) as page:
        first: list[int] = []
        _drop_while(page, lambda: first.extend(passage(core) for _ in range(8)))
        wait_for(lambda: first[-1] in rows(page))
        notice = page.locator("#feed-gap")
        assert notice.locator("a").get_attribute("href") == f"/guard/rows/{first[0]}"
        second: list[int] = []
        _drop_while(page, lambda: second.extend(passage(core) for _ in range(9)))
        wait_for(lambda: second[-1] in rows(page))
        assert notice.inner_text().startswith("7 rows from while the feed was disconnected")
        assert notice.locator("a").get_attribute("href") == f"/guard/rows/{first[0]}"


#: Counts the beats that reach the page, whatever guard.js listens to (a test's own ear),
#: and the streams it opens (one given up as silent is opened again).
BEAT_EAR = """
(() => {
  const Real = window.EventSource;
  window.beatsOnWire = 0;
  window.streamsOpened = 0;
  window.EventSource = function (url, init) {
    window.streamsOpened += 1;
    const es = new Real(url, init);
    es.addEventListener("beat", () => { window.beatsOnWire += 1; });
    return es;
  };
  window.EventSource.prototype = Real.prototype;
})();
"""


@pytest.fixture
def beating_site(tmp_path, monkeypatch) -> Iterator[Any]:
    """The console with a beat every 0.2 s (real time)."""
    import ui.guard.live

    monkeypatch.setattr(ui.guard.live, "HEARTBEAT_S", 0.2)
    yield from serve(tmp_path, monkeypatch)


def test_a_quiet_stream_that_beats_keeps_the_feed_live(beating_site, browser):
    """No passage for longer than two beats and the margin, the stream beating all along:
    its beats are heard and the page never says the feed is disconnected (nor holds back the
    manual decision)."""
    _, url = beating_site
    with live_console(browser, url, init_script=BEAT_EAR) as page:
        silent_ms = 2 * 200 + 5000  # guard.js: two beats missed and the margin
        for _ in range(4):  # 8 s of the page's time, a beat heard in each 2 s of it
            heard = page.evaluate("window.beatsOnWire")
            wait_for(lambda heard=heard: page.evaluate("window.beatsOnWire") > heard)
            page.clock.run_for(2000)
            assert page.locator("#live-stale").is_hidden()
            assert page.evaluate("window.streamsOpened") == 1  # never given up as silent
        assert silent_ms < 4 * 2000
        assert page.locator("#manual-form button[value=pass]").is_enabled()


def test_the_drops_time_is_the_sites_not_the_tablets(beating_site, browser):
    """The banner said "disconnected since" by the tablet's clock in the tablet's zone (a
    tablet set to London and to the evening said 20:37 at a gate where it was 09:00); times
    on the console are the site's: the server's clock, as its last beat said it, in the
    site's zone."""
    core, url = beating_site
    evening = datetime(2026, 2, 12, 20, 37, tzinfo=UTC)
    with live_console(
        browser, url, init_script=BEAT_EAR, tablet_at=evening, timezone_id="Europe/London"
    ) as page:
        core.clock.advance(2 * 3600 + 15 * 60)  # 11:15 at the gate
        heard = page.evaluate("window.beatsOnWire")
        wait_for(lambda: page.evaluate("window.beatsOnWire") > heard)
        page.context.set_offline(True)  # the Wi-Fi gone: not a beat more
        page.clock.run_for(SILENCE_MS)
        banner = page.locator("#live-stale")
        wait_for(banner.is_visible)
        site_now = core.clock.now().astimezone(ZoneInfo(core.config.site.timezone))
        assert f"{site_now:%H:%M}" == "11:15"
        assert " since 11:15 " in banner.inner_text()


def test_a_confirmation_line_open_through_a_drop_can_be_confirmed_once_back(site, browser):
    """The guard had asked to pass someone when the feed dropped: Confirm waits while the
    page is stale, and is offered again once the feed is back."""
    core, url = site
    passage(core)
    with live_console(browser, url) as page:
        page.check("#manual-form input[name=subject][value=none]")
        page.select_option("#manual-form select[name=direction]", "in")
        page.fill("#manual-form input[name=reason]", "resident without phone")
        page.click("#manual-form button[value=pass]")
        confirm = page.locator("#manual-confirm-yes")
        confirm.wait_for()

        def while_stale() -> None:
            assert page.locator("#live-stale").is_visible() and confirm.is_disabled()

        _drop_while(page, while_stale)
        wait_for(page.locator("#live-stale").is_hidden)
        assert page.locator("#manual-confirm").is_visible()
        assert confirm.is_enabled()


def times(page) -> dict[int, str]:
    """Each row's seq and the time it shows."""
    cells = "t => t.map(r => [r.dataset.seq, r.cells[1].textContent])"
    return {int(s): t for s, t in page.eval_on_selector_all("#feed tbody tr", cells)}


def _at_night(core) -> None:
    core.clock.set_wall(core.clock.now().replace(hour=15, minute=50))  # 23:50 in Shanghai


def test_rows_drawn_before_midnight_show_their_date_once_a_later_days_row_arrives(site, browser):
    """A page drawn at 23:50 whose feed drops and comes back after midnight: the rows it drew
    last night show their date as the rows the reconnect draws do, never one feed mixing
    '23:50:00' (last night, reading as tonight) with '02-12 23:55:00'."""
    core, url = site
    _at_night(core)
    first = passage(core)
    with live_console(browser, url) as page:
        assert times(page)[first] == "23:50:00"
        later: list[int] = []

        def past_midnight() -> None:
            later.append(passage(core))  # 23:50, last night once midnight passes
            core.clock.set_wall(core.clock.now() + timedelta(minutes=20))
            later.append(passage(core))  # 00:10 the next day

        _drop_while(page, past_midnight)
        wait_for(lambda: later[-1] in rows(page))
        assert times(page) == {
            later[1]: "00:10:00",
            later[0]: "02-12 23:50:00",
            first: "02-12 23:50:00",
        }


def test_a_quiet_page_open_past_midnight_dates_last_nights_rows_at_the_next_beat(
    beating_site, browser
):
    """No passage after midnight: the stream's next beat says the site's new day and the
    rows of last night show their date (the site's day, not the tablet's own clock)."""
    core, url = beating_site
    _at_night(core)
    first = passage(core)
    with live_console(browser, url, clock=False) as page:
        assert times(page)[first] == "23:50:00"
        core.clock.set_wall(core.clock.now() + timedelta(minutes=20))
        wait_for(lambda: times(page)[first] == "02-12 23:50:00")


def test_the_manual_forms_dwellings_are_fetched_into_its_datalist(site, browser):
    """The dwellings came inline in every load of the live page (518 KB with 20,000): the page
    now fetches them once per list from ``/guard/api/households`` into its datalist."""
    core, url = site
    cmap = core.ledgers.compound
    data = b"building,unit,floor,household\n1,1,1,1-1-101\n1,1,1,1-1-102\n2,1,1,2-1-101\n"
    cmap.apply(cmap.plan_import(data, "map.csv"), "root")
    with live_console(browser, url) as page:
        listed = (
            "() => [...document.querySelectorAll('#manual-households option')].map(o => o.value)"
        )
        wait_for(lambda: page.evaluate(listed))
        assert page.evaluate(listed) == ["1-1-101", "1-1-102", "2-1-101"]


def test_a_streamed_row_under_a_dwelling_not_checked_carries_its_badge(site, browser):
    """A guard's pass recorded under a dwelling the gate did not know, kept as typed, reaches
    the open page by its stream (here as it comes back from a drop): its row says the
    dwelling was not checked, as the rows the page came with do; a pass does not."""
    core, url = site
    with live_console(browser, url) as page:
        made: list[int] = []

        def recorded() -> None:
            flagged = EventDraft(direction="out", decision="manual_pass", operator="alice",
                                 household="D-0404", flags=("unknown_dwelling",))  # fmt: skip
            made.append(core.store.append(flagged).seq)
            made.append(passage(core))

        _drop_while(page, recorded)
        wait_for(lambda: made[-1] in rows(page))
        texts = "s => s.map(b => b.textContent)"
        flagged, plain = (f'#feed tr[data-seq="{seq}"] .badge.unchecked' for seq in made)
        assert page.eval_on_selector_all(flagged, texts) == ["dwelling not checked"]
        assert page.eval_on_selector_all(plain, texts) == []
