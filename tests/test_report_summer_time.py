"""The daily report and the guard's statistics on the days summer time begins and ends
(Berlin: 29 March 2026, 02:00 -> 03:00; 25 October 2026, 03:00 -> 02:00): the hour the
autumn change repeats is two hours of the report, the hour the spring change skips none, and
a fever alarm's time says which 02:30 it was."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, close_core, login, make_app, make_core

from kiosk.clock import FakeClock
from kiosk.config import parse_config
from kiosk.stats import daily_report
from kiosk.store import EventDraft

BERLIN = "Europe/Berlin"
AUTUMN, SPRING = date(2026, 10, 25), date(2026, 3, 29)


def add(store, clock, when: datetime, **kw) -> None:
    clock.set_wall(when)
    fields = {"direction": "in", "decision": "pass", "reasons": ("ok",), "temp_c": 36.6} | kw
    store.append(EventDraft(**fields))


FEVER = {"decision": "deny", "reasons": ("fever",), "temp_c": 38.4}


def test_the_hour_the_autumn_change_repeats_is_two_hours_of_the_report(reporting_store, clock):
    """Before: ``by_hour`` put 02:30 summer time and 02:30 winter time, an hour apart, in one
    bucket, so the chart showed one busy 02:00 hour where there were two. ``hours`` gives the
    day's real hours (25 that day), each with its start and UTC offset."""
    add(reporting_store, clock, datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 02:30 +02:00
    add(reporting_store, clock, datetime(2026, 10, 25, 1, 30, tzinfo=UTC))  # 02:30 +01:00
    add(reporting_store, clock, datetime(2026, 10, 25, 1, 40, tzinfo=UTC))  # 02:40 +01:00
    report = daily_report(reporting_store.reader(), AUTUMN, BERLIN)
    hours = report["hours"]
    assert len(hours) == 25
    twos = [h for h in hours if h["hour"] == 2]
    assert [(h["start"], h["events"], h["passages"]) for h in twos] == [
        ("2026-10-25T02:00:00+02:00", 1, 1),
        ("2026-10-25T02:00:00+01:00", 2, 2),
    ]
    assert [h["hour"] for h in hours] == [0, 1, 2, 2, *range(3, 24)]
    assert sum(h["events"] for h in hours) == report["events"] == 3
    assert report["by_hour"][2] == 3 and len(report["by_hour"]) == 24  # kept as it was


def test_the_hour_the_spring_change_skips_is_no_hour_of_the_report(reporting_store, clock):
    add(reporting_store, clock, datetime(2026, 3, 29, 0, 59, tzinfo=UTC))  # 01:59 +01:00
    add(reporting_store, clock, datetime(2026, 3, 29, 1, 0, tzinfo=UTC))  # 03:00 +02:00
    hours = daily_report(reporting_store.reader(), SPRING, BERLIN)["hours"]
    assert len(hours) == 23 and 2 not in [h["hour"] for h in hours]
    assert [(h["start"], h["events"]) for h in hours[1:3]] == [
        ("2026-03-29T01:00:00+01:00", 1),
        ("2026-03-29T03:00:00+02:00", 1),
    ]


def test_an_ordinary_days_hours_are_its_24_clock_hours(reporting_store, clock):
    add(reporting_store, clock, datetime(2026, 3, 2, 1, 30, tzinfo=UTC))  # 09:30 Shanghai
    report = daily_report(reporting_store.reader(), date(2026, 3, 2), "Asia/Shanghai")
    assert [h["hour"] for h in report["hours"]] == list(range(24))
    assert [h["events"] for h in report["hours"]] == report["by_hour"]
    assert [h["passages"] for h in report["hours"]] == report["passages"]["by_hour"]
    assert report["hours"][9]["start"] == "2026-03-02T09:00:00+08:00"


@pytest.fixture
def berlin_console(data_dir, monkeypatch):
    clock = FakeClock(start=datetime(2026, 10, 25, 12, 0, tzinfo=UTC))
    core = make_core(data_dir, clock, monkeypatch, parse_config({"site": {"timezone": BERLIN}}))
    try:
        with TestClient(make_app(core), base_url=BASE) as client:
            login(client)
            yield clock, core, client
    finally:
        close_core(core)


def _fever_list(page: str) -> list[str]:
    block = page.split('<ul class="times">', 1)[1].split("</ul>", 1)[0]
    return [re.sub(r"<[^>]+>", "", li).strip() for li in re.findall(r"<li>(.*?)</li>", block)]


def test_the_statistics_pages_chart_has_the_days_25_hours(berlin_console):
    """Before: the chart drew 24 bars, the passages of both 02:00 hours in one."""
    clock, core, client = berlin_console
    add(core.store, clock, datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    add(core.store, clock, datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    page = client.get("/guard/stats?day=2026-10-25&lang=en").text
    chart = page.split("<caption>Flow per hour</caption>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><th[^>]*>([^<]*)</th><td[^>]*>([^<]*)</td></tr>", chart)
    assert len(rows) == 25
    assert ("02 UTC+02:00", "1") in rows and ("02 UTC+01:00", "1") in rows
    assert ("03", "0") in rows


def test_the_reports_workbook_gives_the_repeated_hour_two_rows_with_their_offsets(
    reporting_store, clock
):
    """Before: the workbook's 'by hour' sheet had one 02 row for both 02:00 hours."""
    import io

    import openpyxl

    from kiosk.stats import report_file

    add(reporting_store, clock, datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    add(reporting_store, clock, datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    book = openpyxl.load_workbook(io.BytesIO(report_file(daily_report(
        reporting_store.reader(), AUTUMN, BERLIN), "xlsx")))  # fmt: skip
    rows = list(book["by hour"].iter_rows(values_only=True))
    assert rows[0] == ("hour", "events", "utc_offset")
    assert len(rows) == 26
    assert rows[3:5] == [(2, 1, "UTC+02:00"), (2, 1, "UTC+01:00")]


def test_a_fever_alarm_in_the_repeated_hour_says_which_one(reporting_store, clock):
    add(reporting_store, clock, datetime(2026, 10, 25, 0, 30, tzinfo=UTC), **FEVER)
    add(reporting_store, clock, datetime(2026, 10, 25, 1, 30, tzinfo=UTC), **FEVER)
    alarms = daily_report(reporting_store.reader(), AUTUMN, BERLIN)["fever_alarms"]
    assert alarms["times"] == ["02:30:00", "02:30:00"]  # as before
    assert alarms["at"] == ["2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"]


def test_the_statistics_page_tells_the_two_0230_fevers_of_the_autumn_change_apart(
    berlin_console,
):
    """Before: the guard read '02:30:00' twice and could not tell which alarm came first or
    that they were an hour apart. On a day the offset changes each time carries it, as the
    export's UTC offset column does."""
    clock, core, client = berlin_console
    add(core.store, clock, datetime(2026, 10, 25, 0, 30, tzinfo=UTC), **FEVER)
    add(core.store, clock, datetime(2026, 10, 25, 1, 30, tzinfo=UTC), **FEVER)
    add(core.store, clock, datetime(2026, 10, 25, 9, 15, tzinfo=UTC), **FEVER)
    page = client.get("/guard/stats?day=2026-10-25&lang=en").text
    assert _fever_list(page) == [
        "02:30:00 UTC+02:00",
        "02:30:00 UTC+01:00",
        "10:15:00 UTC+01:00",
    ]


def test_an_ordinary_days_fever_times_stay_as_the_guard_knows_them(berlin_console):
    clock, core, client = berlin_console
    add(core.store, clock, datetime(2026, 10, 26, 9, 15, tzinfo=UTC), **FEVER)
    page = client.get("/guard/stats?day=2026-10-26&lang=en").text
    assert _fever_list(page) == ["10:15:00"]


@pytest.mark.parametrize(
    ("ts", "shown"),
    [
        ("2026-10-25T00:30:00.000000Z", "10-25 02:30:00 UTC+02:00"),
        ("2026-10-25T01:30:00.000000Z", "10-25 02:30:00 UTC+01:00"),
        ("2026-10-25T02:30:00.000000Z", "10-25 03:30:00"),  # once only: as the guard knows it
        ("2026-03-29T01:30:00.000000Z", "03-29 03:30:00"),
    ],
)
def test_an_alarm_card_in_the_repeated_hour_says_which_one(ts, shown):
    """Before: on the live page an alarm raised at 02:30 summer time and still open at 02:45
    winter time read '02:30', a quarter of an hour old instead of an hour and a quarter. A
    time the autumn change repeats carries its UTC offset on the alarm cards and the feed."""
    from zoneinfo import ZoneInfo

    from kiosk.alarms import Alarm
    from ui.guard.display import alarm_view, feed_row

    zone = ZoneInfo(BERLIN)
    card = alarm_view(Alarm(key="k", kind="fever", ts=ts), "en", zone, frozenset())
    assert card["time"] == shown
    event = {"seq": 1, "ts": ts, "decision": "deny", "reasons": '["fever"]', "direction": "in"}
    assert feed_row(event, "en", zone, frozenset())["time"] == shown[6:]


def test_the_roster_shows_a_night_shift_ending_in_the_repeated_hour_with_its_offset(
    berlin_console,
):
    """Before: a shift ending at 02:30 winter time read '2026-10-25 02:30', the same as
    02:30 summer time an hour earlier, when the guard on duty could still hand over."""
    clock, core, client = berlin_console
    start, end = (
        datetime(2026, 10, 24, 18, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    )
    core.ledgers.roster.add_shift("gate-1", "alice", start, end, actor="root")
    clock.set_wall(datetime(2026, 10, 24, 19, 0, tzinfo=UTC))
    page = client.get("/guard/community/handover?lang=en").text
    shifts = page.split('id="shifts"', 1)[1].split("</table>", 1)[0]
    assert "2026-10-24 20:00<" in shifts and "2026-10-25 02:30 UTC+01:00<" in shifts
