"""The live feed's rows say their date when they are not of today's local day: at the start
of a shift last evening's denies must not read as this morning's."""

from __future__ import annotations

import re
from datetime import date
from zoneinfo import ZoneInfo

from guard_support import add_event, login

from ui.guard.display import feed_row

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_row_of_an_earlier_local_day_carries_its_date():
    """Before: 23:10 of the evening before read '23:10:00', as if it were tonight's."""
    event = {"seq": 1, "ts": "2026-03-01T15:10:00.000000Z", "decision": "deny", "direction": "in"}
    # 23:10 on 03-01 in Shanghai; the guard reads it at 07:00 on 03-02.
    assert feed_row(event, "en", SHANGHAI, frozenset(), today=date(2026, 3, 2))["time"] == (
        "03-01 23:10:00"
    )
    # The same day: the time alone, as before.
    assert feed_row(event, "en", SHANGHAI, frozenset(), today=date(2026, 3, 1))["time"] == (
        "23:10:00"
    )


def test_the_local_day_decides_not_the_utc_one():
    """16:30 UTC on 03-01 is 00:30 on 03-02 in Shanghai: today's, no date."""
    event = {"seq": 1, "ts": "2026-03-01T16:30:00.000000Z", "decision": "pass", "direction": "in"}
    assert feed_row(event, "en", SHANGHAI, frozenset(), today=date(2026, 3, 2))["time"] == (
        "00:30:00"
    )


def test_the_feed_page_and_its_json_date_yesterdays_rows(guard_client, guard_core, clock):
    """The live page's rows and /guard/api/feed (the stream draws its rows with the same
    function) carry the date of a row not from today; today's read as the time alone."""
    add_event(guard_core, decision="deny", reasons=("fever",))  # 03-02 16:30 Shanghai
    clock.advance(24 * 3600)
    add_event(guard_core)  # 03-03 16:30
    login(guard_client)
    rows = guard_client.get("/guard/api/feed?lang=en").json()["rows"]
    assert [(r["seq"], r["time"]) for r in rows] == [(2, "16:30:00"), (1, "03-02 16:30:00")]
    page = guard_client.get("/guard?lang=en").text
    times = re.findall(r'<td class="num">(\d+)</td><td>([^<]*)</td>', page)
    assert times == [("2", "16:30:00"), ("1", "03-02 16:30:00")]


def test_a_row_carries_its_local_day_and_its_dated_time_for_a_page_open_past_midnight():
    """A page drawn at 23:50 shows 23:10 alone; after midnight it must read '03-01 23:10:00':
    each row carries its local day and that form, the page redraws it once the day moves on
    (before 2026-12-06 the time alone until a reload, beside dated rows a reconnect drew)."""
    event = {"seq": 1, "ts": "2026-03-01T15:10:00.000000Z", "decision": "deny", "direction": "in"}
    row = feed_row(event, "en", SHANGHAI, frozenset(), today=date(2026, 3, 1))
    assert (row["time"], row["day"], row["dated"]) == ("23:10:00", "2026-03-01", "03-01 23:10:00")


def test_the_live_page_says_the_sites_day_and_each_rows(guard_client, guard_core, clock):
    """The page's own day is the site's (the server's clock: a tablet's may be wrong)."""
    add_event(guard_core)  # 03-02 16:30 Shanghai
    login(guard_client)
    page = guard_client.get("/guard?lang=en").text
    assert 'data-today="2026-03-02"' in page
    assert '<tr data-seq="1" data-day="2026-03-02" data-dated="03-02 16:30:00">' in page
