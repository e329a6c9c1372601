"""What a gate's daily report says beyond its figures, and the office's collector and district
report reading it. Before: a 429's ``Retry-After`` on a report was not kept (the collector asked
again at its next interval, before the gate said); the gate's ``unreadable_rows`` was dropped
(the district took a damaged day's figures as the gate's whole day); and a day that ended
before the gate's log began was reported as zeros, which the collector kept and the district
summed as a real day (a gate installed Wednesday: Monday "0 passages")."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from pgfixture import Network
from support import kiosk_api
from test_damaged_rows import damage

from kiosk.clock import FakeClock
from kiosk.config.fleet import CollectorConfig
from kiosk.stats import BEFORE_LOG, as_of_text, daily_report
from kiosk.store import EventDraft
from office.collector import Collector
from office.district import district_csv, district_report
from office.gatereports import (
    RETRY_AFTER_MAX_S,
    UNREADABLE_KEY,
    collect_gate_reports,
    collect_reports,
)
from office.pg import PgTarget
from office.pull import PullError

pytest_plugins = ("pgfixture",)

TZ = "Asia/Shanghai"
#: The gate installed (its token made) Wednesday 2026-03-04 at 10:00 in Shanghai.
INSTALLED = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY = (date(2026, 3, d) for d in range(2, 7))
#: Friday 09:00 in Shanghai: the office asks the gate for its week.
ASKED = datetime(2026, 3, 6, 1, 0, tzinfo=UTC)
BASE = "http://gate-1"


class _Kept:
    """The days a collector keeps, each with its figures, in the order written."""

    def __init__(self) -> None:
        self.figures: dict[date, dict] = {}

    def write_gate_report(self, kiosk_id, day, timezone, ledgers, final):
        self.figures[day] = ledgers

    def final_report_days(self, kiosk_id, since):
        return set()


@pytest.fixture
def gate(tmp_path):
    """A gate installed Wednesday, one passage Thursday, asked on Friday morning."""
    clock = FakeClock(start=INSTALLED)
    core = kiosk_api(tmp_path / "gate-1.db", "gate-1", clock, config={"site": {"timezone": TZ}})
    clock.set_wall(INSTALLED + timedelta(days=1))
    core.store.append(EventDraft(direction="in", decision="pass", household="3-201"))
    clock.set_wall(ASKED)
    yield core
    core.store.close()


def _collect(core, kept, **faults) -> tuple:
    """One round of the gate's reports into ``kept``: what it returned and the days asked."""
    net = Network(core, **faults)
    with httpx.Client(transport=httpx.MockTransport(net)) as client:
        got = collect_gate_reports(client, kept, BASE, "gate-1", core.token)
    asked = [r.url.params.get("day") for r in net.requests]
    return got, asked


# -- a day before the gate's log began -------------------------------------------------------


def test_a_day_before_the_gates_log_began_says_so(gate):
    reader = gate.store.reader()
    said = {day: daily_report(reader, day, TZ)["before_log"] for day in (MONDAY, TUESDAY)}
    assert said == {MONDAY: True, TUESDAY: True}
    # Wednesday: its token made (an audit row) before any event; Friday: nothing yet.
    for day in (WEDNESDAY, THURSDAY, FRIDAY):
        assert daily_report(reader, day, TZ)["before_log"] is False


def test_the_office_api_and_the_reports_as_of_line_say_a_day_before_the_log(gate):
    answer = gate.test_client.get(
        "/api/v1/stats",
        params={"day": MONDAY.isoformat()},
        headers={"Authorization": f"Bearer {gate.token}"},
    )
    assert answer.status_code == 200
    report = answer.json()
    assert report["before_log"] is True and report["events"] == 0
    assert BEFORE_LOG in as_of_text(report)
    thursday = gate.test_client.get(
        "/api/v1/stats",
        params={"day": THURSDAY.isoformat()},
        headers={"Authorization": f"Bearer {gate.token}"},
    ).json()
    assert thursday["before_log"] is False and BEFORE_LOG not in as_of_text(thursday)


def test_the_consoles_line_says_a_day_before_the_log_in_the_guards_language(gate):
    from ui.report_words import as_of_line

    report = daily_report(gate.store.reader(), MONDAY, TZ) | {"as_of": ASKED.isoformat()}
    assert as_of_line(report, "zh-CN")[1].endswith(
        "该日在本闸口日志开始之前已结束：没有记录，不是零"
    )
    assert as_of_line(report, "en")[1].endswith(BEFORE_LOG)


def test_an_empty_log_says_no_day_is_before_it(tmp_path):
    """Nothing says when a log holding nothing began: no day is said to be before it."""
    from support import reporting_log

    log = reporting_log(tmp_path / "empty.db", FakeClock(start=ASKED))
    try:
        assert daily_report(log.reader(), MONDAY, TZ)["before_log"] is False
    finally:
        log.close()


def test_the_collector_keeps_nothing_of_the_days_before_a_gates_log(gate):
    """The week of a gate installed Wednesday: Friday, Thursday and Wednesday kept; Tuesday
    answered as before the log, not kept, no refusal, and Monday not asked."""
    kept = _Kept()
    got, asked = _collect(gate, kept)
    assert list(kept.figures) == [FRIDAY, THURSDAY, WEDNESDAY]
    assert got.error is None
    assert asked == [None, *(d.isoformat() for d in (THURSDAY, WEDNESDAY, TUESDAY))]


def test_a_gate_whose_today_is_before_its_log_has_nothing_kept(gate):
    """Its clock set back to Tuesday (not synchronised, nor the office's): no day of zeros
    kept under a day it never kept, no day before it asked, and the round fails naming it
    (it returned with no error before: nothing kept, nothing said)."""
    gate.clock.set_wall(ASKED - timedelta(days=3))
    kept = _Kept()
    net = Network(gate)
    named = r"today \(2026-03-03\) is before the gate's log began: its clock is wrong, nothing"
    refused = pytest.raises(PullError, match=named)
    with httpx.Client(transport=httpx.MockTransport(net)) as client, refused:
        collect_gate_reports(client, kept, BASE, "gate-1", gate.token)
    assert kept.figures == {} and [r.url.params.get("day") for r in net.requests] == [None]


def test_a_report_whose_before_log_is_not_a_yes_or_no_is_refused():
    def answer(request: httpx.Request) -> httpx.Response:
        day = request.url.params.get("day", FRIDAY.isoformat())
        report = {"day": day, "timezone": TZ, "community": {}}
        return httpx.Response(
            200, json=report | ({"before_log": "yes"} if day < "2026-03-06" else {})
        )

    kept = _Kept()
    refused = pytest.raises(PullError, match="before_log: expected true or false")
    with httpx.Client(transport=httpx.MockTransport(answer)) as client, refused:
        collect_reports(client, kept, BASE, "gate-1", "t" * 20)
    assert list(kept.figures) == [FRIDAY]


# -- the gate's unreadable rows --------------------------------------------------------------


def test_the_collector_keeps_the_gates_unreadable_rows(gate):
    gate.store.append(EventDraft(direction="out", decision="pass", household="3-201"))
    damage(gate.store.path, "reasons", seq=2)  # Friday's passage
    kept = _Kept()
    _collect(gate, kept)
    said = {day: figures[UNREADABLE_KEY] for day, figures in kept.figures.items()}
    assert said == {FRIDAY: 1, THURSDAY: 0, WEDNESDAY: 0}


@pytest.mark.parametrize("said", [-1, "3", 1.5, True])
def test_unreadable_rows_that_are_not_a_count_are_refused(said):
    def answer(request: httpx.Request) -> httpx.Response:
        report = {"day": FRIDAY.isoformat(), "timezone": TZ, "community": {}}
        return httpx.Response(200, json=report | {"unreadable_rows": said})

    refused = pytest.raises(PullError, match="unreadable_rows: expected a count")
    with httpx.Client(transport=httpx.MockTransport(answer)) as client, refused:
        collect_gate_reports(client, _Kept(), BASE, "gate-1", "t" * 20, days=1)


def test_the_district_names_the_gate_whose_day_had_unreadable_rows(gate, pg_dsn):
    """Friday at the district: the gate's rows it could not read said, by gate and count, in
    its JSON and its CSV; Monday, before the gate's log: no row of zeros summed, no gate
    reporting it."""
    gate.store.append(EventDraft(direction="out", decision="pass", household="3-201"))
    damage(gate.store.path, "reasons", seq=2)
    net = Network(gate)
    with PgTarget(pg_dsn) as target, httpx.Client(transport=httpx.MockTransport(net)) as client:
        target.write_page(BASE, "gate-1", gate.store.events(limit=1000))
        collect_reports(client, target, BASE, "gate-1", gate.token)
    friday = district_report(pg_dsn, FRIDAY, TZ)
    assert [g["unreadable_rows"] for g in friday["by_gate"]] == [1]
    rows = list(csv.reader(io.StringIO(district_csv(friday))))
    said = [r for r in rows if r[0] == "unreadable_rows"]
    assert len(said) == 1 and said[0][1] == "gate-1" and "1 row of the day" in said[0][2]
    thursday = district_report(pg_dsn, THURSDAY, TZ)
    assert [g["unreadable_rows"] for g in thursday["by_gate"]] == [0]
    assert not [
        r for r in csv.reader(io.StringIO(district_csv(thursday))) if r[0] == "unreadable_rows"
    ]
    monday = district_report(pg_dsn, MONDAY, TZ)
    assert monday["ledgers"]["gates"] == [] and monday["community"]["returnees"] is None


# -- a 429's Retry-After ---------------------------------------------------------------------


def _limited(asked: list, retry_after: str | None, *, today: bool = False):
    """A gate rate-limiting its past days (or every day, ``today``) with ``retry_after``."""

    def answer(request: httpx.Request) -> httpx.Response:
        day = request.url.params.get("day")
        asked.append(day)
        if today or day is not None:
            headers = {} if retry_after is None else {"Retry-After": retry_after}
            return httpx.Response(429, json={"detail": "rate limited"}, headers=headers)
        return httpx.Response(
            200, json={"day": FRIDAY.isoformat(), "timezone": TZ, "community": {}}
        )

    return httpx.Client(transport=httpx.MockTransport(answer))


def _rounds(monkeypatch, retry_after: str | None, waits: list[float], **gate) -> list[int]:
    """The requests of a round of reports at each of ``waits`` seconds after a first round
    (a report interval of 60 s), the gate's 429 saying ``retry_after``."""
    clock = FakeClock(start=ASKED)
    monkeypatch.setenv("GATE_TOKEN", "t" * 20)
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": BASE + ":8000", "token_env": "GATE_TOKEN"}]}
    )
    asked: list = []
    limited = _limited(asked, retry_after, **gate)
    collector = Collector(
        config, "postgresql://office/unused", clock=clock, client=limited,
        target_factory=lambda dsn: _KeptAll(), monotonic=lambda: clock.monotonic_ns() / 1e9,
        report_interval_s=60,
    )  # fmt: skip
    source = config.kiosks[0]
    try:
        counts, elapsed = [], 0.0
        for wait in [0.0, *waits]:
            clock.advance(wait - elapsed)
            elapsed, before = wait, len(asked)
            collector._reports(source, "t" * 20, BASE + ":8000", "gate-1")
            counts.append(len(asked) - before)
        return counts
    finally:
        collector.client.close()


class _KeptAll(_Kept):
    """As the collector's database target: its other calls do nothing."""

    def reported_compound(self, kiosk_id, day):
        return None

    def close(self):
        pass


def test_a_gates_retry_after_holds_its_reports_until_the_time_it_said(monkeypatch):
    """429 with ``Retry-After: 600`` on a past day: before, the next round (60 s on) asked
    again; now none until 600 s have passed."""
    assert _rounds(monkeypatch, "600", [60, 300, 599, 600]) == [2, 0, 0, 0, 2]


def test_a_retry_after_on_today_holds_the_reports_too(monkeypatch):
    assert _rounds(monkeypatch, "300", [60, 300], today=True) == [1, 0, 1]


@pytest.mark.parametrize(
    ("retry_after", "waits", "counts"),
    [
        ("9" * 18, [RETRY_AFTER_MAX_S - 1, RETRY_AFTER_MAX_S], [2, 0, 2]),  # an hour at most
        ("-600", [60], [2, 2]),  # not a delay: the report interval alone
        ("Wed, 21 Oct 2099 07:28:00 GMT", [60], [2, 2]),  # a date, on the gate's clock
        ("1e9", [60], [2, 2]),
        (None, [60], [2, 2]),
    ],
)
def test_a_hostile_retry_after_is_bounded(monkeypatch, retry_after, waits, counts):
    assert _rounds(monkeypatch, retry_after, waits) == counts
