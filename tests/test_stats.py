"""The daily report: counts per local day, no personal data, frozen days answer the same."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta

import openpyxl
import pytest

from kiosk.categories import report_rows
from kiosk.config.policy import QuotaConfig
from kiosk.lists import Freshness
from kiosk.stats import daily_report, day_bounds, freeze_days, report_file
from kiosk.store import EventDraft
from ui.report_words import file_words, words

TZ = "Asia/Shanghai"
DAY = date(2026, 3, 2)  # 2026-03-01T16:00Z .. 2026-03-02T16:00Z


@pytest.fixture
def store(reporting_store):
    return reporting_store


def at(clock, when: datetime) -> None:
    clock.set_wall(when)


def add(store, clock, when, **kw):
    clock.set_wall(when)
    fields = {"direction": "in", "decision": "pass", "reasons": ("ok",), "temp_c": 36.6}
    fields.update(kw)
    return store.append(EventDraft(**fields))


def test_over_the_quota_is_counted_as_the_gate_counts_in_a_rolling_period(store, clock):
    """One outing every two days is a rolling 48 h at the gate (``kiosk.history``). The report
    counted calendar days instead, so a guard's override 47 h after an outing (two days back
    on the calendar) was not over the quota in the office's figures, and one two calendar days
    apart but 30 h later neither."""
    quota = QuotaConfig(enabled=True, exits=1, period_days=2)
    day_start = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # DAY's local midnight
    # E5: out at 17:00 local on 28 Feb, then (overridden) at 16:00 on 2 March: 47 h later.
    add(store, clock, day_start - timedelta(hours=39), direction="out", household="E5")
    add(store, clock, day_start + timedelta(hours=8), direction="out", household="E5",
        decision="manual_pass", operator="zhou")  # fmt: skip
    # F6: out at 23:00 on 28 Feb, then at 01:00 on 2 March: 26 h later, over the quota.
    add(store, clock, day_start - timedelta(hours=25), direction="out", household="F6")
    add(store, clock, day_start + timedelta(hours=1), direction="out", household="F6",
        decision="manual_pass", operator="zhou")  # fmt: skip
    # G7: out at 09:00 on 28 Feb and at 10:00 on 2 March: 49 h apart, within the quota.
    add(store, clock, day_start - timedelta(hours=47), direction="out", household="G7")
    add(store, clock, day_start + timedelta(hours=2), direction="out", household="G7")
    # H8: went out 30 h before the day and not on it: not this day's figure at all.
    add(store, clock, day_start - timedelta(hours=30), direction="out", household="H8")
    exits = daily_report(store.reader(), DAY, TZ, quota)["exits_per_household"]
    assert exits["households"] == 3 and exits["exits"] == 3
    assert exits["over_quota_households"] == 2  # E5 and F6; not G7


def test_day_bounds_are_local_midnights_in_utc():
    assert day_bounds(DAY, TZ) == ("2026-03-01T16:00:00", "2026-03-02T16:00:00")


def test_counts_by_decision_reason_direction_and_local_hour(store, clock):
    add(store, clock, datetime(2026, 3, 1, 15, 59, tzinfo=UTC))  # 23:59 on 1 March local
    add(store, clock, datetime(2026, 3, 1, 16, 0, tzinfo=UTC))  # 00:00 local
    add(store, clock, datetime(2026, 3, 2, 1, 30, tzinfo=UTC), direction="out")  # 09:30
    add(
        store,
        clock,
        datetime(2026, 3, 2, 1, 40, tzinfo=UTC),
        decision="deny",
        reasons=("fever", "pass_expired"),
        temp_c=38.4,
    )
    add(store, clock, datetime(2026, 3, 2, 16, 0, tzinfo=UTC))  # next local day
    report = daily_report(store.reader(), DAY, TZ)
    assert report["events"] == 3
    assert report["by_decision"] == {"deny": 1, "pass": 2}
    assert report["by_reason"] == {"fever": 1, "ok": 2, "pass_expired": 1}
    assert report["by_direction"] == {"in": 2, "out": 1}
    assert report["by_hour"][0] == 1 and report["by_hour"][9] == 2 and sum(report["by_hour"]) == 3
    assert report["fever_alarms"] == {
        "count": 1,
        "people": 1,
        "times": ["09:40:00"],
        "at": ["2026-03-02T09:40:00+08:00"],
    }
    assert report["kiosks"] == ["gate-1"]


def test_temperature_histogram_bins_and_missing_temperatures(store, clock):
    base = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    for i, temp in enumerate([34.0, 36.6, 36.9, 37.3, 39.5, None]):
        add(store, clock, base.replace(minute=i), temp_c=temp)
    report = daily_report(store.reader(), DAY, TZ)
    counts = {(b["from_c"], b["to_c"]): b["count"] for b in report["temperature_histogram"]}
    assert counts[(None, 35.0)] == 1
    assert counts[(36.5, 37.0)] == 2
    assert counts[(37.0, 37.5)] == 1
    assert counts[(39.0, None)] == 1
    assert sum(counts.values()) == 5 and report["no_temperature"] == 1


def test_exits_per_household_against_the_quota_without_naming_households(store, clock):
    quota = QuotaConfig(enabled=True, exits=1, period_days=2)
    add(store, clock, datetime(2026, 3, 1, 2, 0, tzinfo=UTC), direction="out", household="B3-1201")
    add(store, clock, datetime(2026, 3, 2, 2, 0, tzinfo=UTC), direction="out", household="B3-1201")
    add(store, clock, datetime(2026, 3, 2, 3, 0, tzinfo=UTC), direction="out", household="A1-0101")
    add(store, clock, datetime(2026, 3, 2, 4, 0, tzinfo=UTC), direction="out", household="A1-0101")
    # Denied and inbound passages are not exits.
    add(store, clock, datetime(2026, 3, 2, 5, 0, tzinfo=UTC), direction="out", household="C2",
        decision="deny", reasons=("quota_exceeded",))  # fmt: skip
    add(store, clock, datetime(2026, 3, 2, 6, 0, tzinfo=UTC), direction="in", household="C2")
    # Nor is a staff member's exit on a household's code (the quota leaves it out): D4's
    # cleaner going out twice and the resident once is one outing, nobody over the quota.
    for hour in (7, 8):
        add(store, clock, datetime(2026, 3, 2, hour, 0, tzinfo=UTC), direction="out",
            household="D4", flags=("quota_exempt",))  # fmt: skip
    add(store, clock, datetime(2026, 3, 2, 9, 0, tzinfo=UTC), direction="out", household="D4")
    report = daily_report(store.reader(), DAY, TZ, quota)
    exits = report["exits_per_household"]
    assert exits["households"] == 3 and exits["exits"] == 4
    assert exits["histogram"] == {"1": 2, "2": 1}
    assert exits["max"] == 2
    # B3 went out yesterday and today (2 in the 2-day period), A1 twice today.
    assert exits["over_quota_households"] == 2
    assert exits["quota_enabled"] is True and exits["quota_exits"] == 1
    assert report["by_reason"]["quota_exceeded"] == 1
    text = json.dumps(report)
    assert "B3-1201" not in text and "A1-0101" not in text and "D4" not in text


def test_lists_freshness_is_added_live(store):
    fresh = Freshness(updated_at=datetime(2026, 3, 2, 1, 0, tzinfo=UTC), source="bundle")
    report = daily_report(store.reader(), DAY, TZ, None, fresh)
    assert report["lists_freshness"]["updated_at"] == "2026-03-02T01:00:00+00:00"
    assert report["lists_freshness"]["source"] == "bundle"
    assert daily_report(store.reader(), DAY, TZ)["lists_freshness"] is None


def test_freeze_keeps_complete_days_only_and_is_idempotent(store, clock):
    add(store, clock, datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    add(store, clock, datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 16:00 on 2 March local: today is open
    assert freeze_days(store, TZ, None, now) == [date(2026, 3, 1)]
    assert freeze_days(store, TZ, None, now) == []
    rows = list(store.reader().query("select day from daily_aggregates"))
    assert [r["day"] for r in rows] == ["2026-03-01"]


def test_a_frozen_day_answers_from_the_aggregate(store, clock):
    add(store, clock, datetime(2026, 3, 1, 2, 0, tzinfo=UTC), direction="out", household="H1")
    before = daily_report(store.reader(), date(2026, 3, 1), TZ)
    freeze_days(store, TZ, None, datetime(2026, 3, 3, tzinfo=UTC))
    store.submit(lambda db: db.execute("update daily_aggregates set report = ?",
                                       [json.dumps(before | {"events": 99})]))  # fmt: skip
    assert daily_report(store.reader(), date(2026, 3, 1), TZ)["events"] == 99
    # A late row for the frozen day (a clock set back) is counted while the day is intact
    # (tests/test_counts_regressions.py); the frozen answer stands for a purged day.
    add(store, clock, datetime(2026, 3, 1, 3, 0, tzinfo=UTC))
    assert daily_report(store.reader(), date(2026, 3, 1), TZ)["events"] == 2


def test_empty_day_reports_zeros(store):
    report = daily_report(store.reader(), DAY, TZ)
    assert report["events"] == 0 and report["by_hour"] == [0] * 24
    assert report["exits_per_household"]["households"] == 0


class _Traced:
    """The event log as ``freeze_days`` sees it, every SQL statement of its write
    transactions counted (``sqlite3`` trace callback on the writer's connection)."""

    def __init__(self, store) -> None:
        self._store = store
        self.statements = 0

    def _count(self, _sql: str) -> None:
        self.statements += 1

    def submit(self, fn):
        def traced(db):
            db.conn.set_trace_callback(self._count)
            try:
                return fn(db)
            finally:
                db.conn.set_trace_callback(None)

        return self._store.submit(traced)


def _statements_of_a_full_freeze(store, clock, days: int) -> int:
    start = datetime(2025, 1, 1, 4, 0, tzinfo=UTC)
    for d in range(days):
        add(store, clock, start + timedelta(days=d), household=f"H{d % 3}")
    now = start + timedelta(days=days + 1)
    traced, frozen = _Traced(store), []
    while True:  # as the purge freezes: a few days a transaction (kiosk.retention)
        days_frozen = freeze_days(traced, TZ, None, now, max_days=5)
        frozen += days_frozen
        if len(days_frozen) < 5:
            break
    assert len(frozen) == days and frozen == sorted(set(frozen))
    return traced.statements


@pytest.mark.slow
def test_a_full_freeze_costs_statements_linear_in_its_days(tmp_path, clock):
    """Each ``freeze_days`` walked from the first day with events, one query a frozen day,
    before reaching the days it freezes: a year-long restored log frozen five days a
    transaction cost days² queries. Each call starts where the last frozen day left off."""
    from support import reporting_log

    counts = {}
    for days in (60, 240):
        log = reporting_log(tmp_path / f"k{days}.db", clock)
        try:
            counts[days] = _statements_of_a_full_freeze(log, clock, days)
        finally:
            log.close()
    # 4x the days: 4x the statements (each day's report, its insert, its step), plus a
    # fixed few; the walk over frozen days made it 5.6x here (2,701 and 15,067).
    assert counts[240] < 4.5 * counts[60], counts


def test_a_freeze_that_starts_past_the_frozen_days_still_finds_every_day_to_freeze(store, clock):
    """Starting after the last frozen day must not skip a day stamped since (a clock set
    back): a late frozen day, and a day before the last frozen one that had no events, both
    frozen, whatever ``max_days`` cut the freezes into."""
    start = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
    for d in range(0, 10, 2):  # even days only
        add(store, clock, start + timedelta(days=d))
    now = start + timedelta(days=12)
    assert len(freeze_days(store, TZ, None, now)) == 5
    add(store, clock, start + timedelta(days=4, hours=1))  # a frozen day: late
    add(store, clock, start + timedelta(days=5))  # a day before the last frozen, new
    add(store, clock, start + timedelta(days=11))  # after it
    frozen = []
    while days := freeze_days(store, TZ, None, now, max_days=1):
        frozen += days
    assert frozen == [(start + timedelta(days=d)).date() for d in (4, 5, 11)]
    for d in (4, 5):
        day = (start + timedelta(days=d)).date()
        assert daily_report(store.reader(), day, TZ)["events"] == (2 if d == 4 else 1)
        assert freeze_days(store, TZ, None, now) == []


def test_the_guards_decisions_are_told_apart_from_the_overrides(store, clock):
    """``by_reason.guard_override`` mixes a person registered by hand, a fever deny the guard
    confirmed and a deny the guard let through: the report had no figure for the overrides.
    ``overrides`` tells each guard decision by what it did to the kiosk's (one a day before,
    at 23:50, overridden after midnight, is read from the log), and ``overriding`` counts
    those that changed it; the CSV rows carry them."""
    start = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # DAY's local midnight
    late = add(store, clock, start - timedelta(minutes=10), decision="deny", reasons=("passback",))
    add(store, clock, start + timedelta(minutes=5), decision="manual_pass", operator="zhou",
        reasons=("guard_override",), flags=(f"overrides:{late.seq}",))  # fmt: skip
    quota = add(store, clock, start + timedelta(hours=8), decision="deny",
                reasons=("quota_exceeded",), direction="out")  # fmt: skip
    add(store, clock, start + timedelta(hours=8, minutes=1), decision="manual_pass",
        operator="zhou", reasons=("guard_override",), flags=(f"overrides:{quota.seq}",),
        direction="out")  # fmt: skip
    fever = add(store, clock, start + timedelta(hours=9), decision="deny", reasons=("fever",),
                temp_c=38.6)  # fmt: skip
    add(
        store,
        clock,
        start + timedelta(hours=9, minutes=1),
        decision="manual_deny",
        operator="zhou",
        reasons=("guard_override",),
        flags=(f"overrides:{fever.seq}",),
    )
    passed = add(store, clock, start + timedelta(hours=10))
    add(store, clock, start + timedelta(hours=10, minutes=1), decision="manual_deny",
        operator="zhou", reasons=("guard_override", "fever"), temp_c=38.2,
        flags=(f"overrides:{passed.seq}",))  # fmt: skip
    add(
        store,
        clock,
        start + timedelta(hours=11),
        decision="manual_pass",
        operator="zhou",
        reasons=("guard_override",),
        kind="registration",
        person={"name": "Xiao Ming"},
    )
    report = daily_report(store.reader(), DAY, TZ)
    assert report["by_reason"]["guard_override"] == 5
    assert report["overrides"] == {
        "registrations": 1,
        "confirmed_denies": 1,
        "let_through_over_a_deny": 2,
        "stopped_over_a_pass": 1,
        "confirmed_passes": 0,
        "overriding": 3,
    }
    rows = {(c, i): v for c, i, v in report_rows(report)[1:]}
    assert rows[("overrides", "let_through_over_a_deny")] == 2
    assert rows[("overrides", "overriding")] == 3
    chinese = report_file(report, "csv", file_words("zh-CN")).decode("utf-8-sig")
    assert "overrides,let_through_over_a_deny,2,保安人工判定,拒绝后放行" in chinese
    book = openpyxl.load_workbook(io.BytesIO(report_file(report, "xlsx", words("en"))))
    sheet = list(book.worksheets[0].iter_rows(values_only=True))
    english = ("Guard decisions", "Overrides (the kiosk's decision changed)")
    assert ("overrides", "overriding", 3, *english) in sheet
