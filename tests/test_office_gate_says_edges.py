"""The edges of what a gate's daily report says beyond its figures (``before_log``) and of the
collector reading it. Before: a Pi gate whose log held any row stamped before NTP set its
clock (a first boot's at 1970 or at the fake-hwclock's date, a restart's ``daemon.start``)
never said a day was before its log, and the office kept the days before its installation
as days of zeros; a gate whose today was before its log had nothing kept and no
``report_error``; a ``Retry-After`` of more than 18 digits, or a proxy's list (``600, 600``),
held the gate's reports for nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pgfixture import Network
from support import kiosk_api
from test_office_gate_says import (
    ASKED,
    BASE,
    FRIDAY,
    INSTALLED,
    MONDAY,
    THURSDAY,
    TUESDAY,
    TZ,
    WEDNESDAY,
    _collect,
    _Kept,
    _KeptAll,
    _rounds,
    gate,  # noqa: F401 - the fixture
)

from kiosk.clock import FakeClock
from kiosk.config.fleet import CollectorConfig
from kiosk.stats import daily_report
from kiosk.store import EventDraft
from office.collector import Collector
from office.gatereports import RETRY_AFTER_MAX_S, collect_gate_reports

#: The clock of a Pi's first boot before NTP set it: 1970 (no saved time), or the date the
#: fake-hwclock of its image saved.
UNSET = [datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC), datetime(2026, 2, 20, tzinfo=UTC)]


def _installed_unsynced(path, first_wall: datetime, mono_s: float = 3600):
    """A gate whose first rows (its token made, a passage) were stamped at ``first_wall``, its
    clock not synchronised; NTP set it ``mono_s`` later, Wednesday 11:00 in Shanghai (one
    passage then); asked on Friday."""
    clock = FakeClock(start=first_wall, is_synced=False)
    core = kiosk_api(path, "gate-1", clock, config={"site": {"timezone": TZ}})
    core.store.append(EventDraft(direction="in", decision="pass", household="3-201"))
    clock.advance(mono_s)
    clock.is_synced = True
    clock.set_wall(INSTALLED + timedelta(hours=1))
    core.store.append(EventDraft(direction="in", decision="pass", household="3-201"))
    clock.set_wall(ASKED)
    return core


def _before_log(core) -> dict:
    reader = core.store.reader()
    return {d: daily_report(reader, d, TZ)["before_log"] for d in (MONDAY, TUESDAY, WEDNESDAY)}


@pytest.mark.parametrize("first_wall", UNSET, ids=["1970", "image-date"])
def test_rows_before_ntp_set_the_clock_do_not_begin_the_log(tmp_path, first_wall):
    """Installed Wednesday, its first rows stamped before NTP: Monday and Tuesday are before
    its log (its first row of a known time, Wednesday's), and the office keeps neither."""
    core = _installed_unsynced(tmp_path / "g.db", first_wall)
    try:
        assert _before_log(core) == {MONDAY: True, TUESDAY: True, WEDNESDAY: False}
        kept = _Kept()
        got, asked = _collect(core, kept)
        assert list(kept.figures) == [FRIDAY, THURSDAY, WEDNESDAY] and got.error is None
        assert asked[-1] == TUESDAY.isoformat()
    finally:
        core.store.close()


def test_a_restart_before_ntp_does_not_begin_the_log_again(gate):  # noqa: F811
    """Installed Wednesday on a synchronised clock, restarted Thursday: its ``daemon.start``
    stamped at 1970 before NTP set the clock says nothing of when the log began."""
    clock = gate.clock
    clock.is_synced = False
    clock.set_wall(datetime(1970, 1, 1, 0, 0, 7, tzinfo=UTC))
    gate.store.audit("daemon", "daemon.start", {})
    clock.is_synced = True
    clock.set_wall(ASKED)
    assert _before_log(gate) == {MONDAY: True, TUESDAY: True, WEDNESDAY: False}


def test_an_event_its_boot_dated_into_a_day_begins_the_log_there(tmp_path):
    """The first boot's passage at 1970, NTP 3 hours later (Wednesday 11:00): its boot's
    clock dates it Wednesday 08:00, and Tuesday stays before the log; NTP 12 hours later,
    it is dated Tuesday 23:00: the log began on Tuesday, no day before it then."""
    core = _installed_unsynced(tmp_path / "a.db", UNSET[0], mono_s=3 * 3600)
    try:
        assert _before_log(core) == {MONDAY: True, TUESDAY: True, WEDNESDAY: False}
    finally:
        core.store.close()
    core = _installed_unsynced(tmp_path / "b.db", UNSET[0], mono_s=12 * 3600)
    try:
        assert _before_log(core) == {MONDAY: True, TUESDAY: False, WEDNESDAY: False}
    finally:
        core.store.close()


def test_a_log_whose_clock_never_synced_says_no_day_before_it(tmp_path):
    """Nothing of a known time: when the log began is not known, no day is before it."""
    clock = FakeClock(start=UNSET[1], is_synced=False)
    core = kiosk_api(tmp_path / "g.db", "gate-1", clock, config={"site": {"timezone": TZ}})
    try:
        core.store.append(EventDraft(direction="in", decision="pass", household="3-201"))
        clock.advance(86400 * 20)
        assert _before_log(core) == {MONDAY: False, TUESDAY: False, WEDNESDAY: False}
    finally:
        core.store.close()


@pytest.mark.parametrize("table", ["events", "audit"])
def test_the_first_row_of_a_known_time_is_one_probe(gate, table):  # noqa: F811
    """Found by an index of the rows stamped on a synchronised clock, not by reading every row
    stamped before NTP set the clock from the first (all of a gate's that never synced)."""
    plan = gate.store.reader().execute(
        f"explain query plan select min(ts) from {table} where clock_synced = 1"  # noqa: S608
    )
    assert [r[-1] for r in plan] == [f"SEARCH {table} USING INDEX {table}_synced_ts"]


# -- today before the gate's log -------------------------------------------------------------


def test_the_collectors_status_says_a_today_before_the_gates_log(gate, monkeypatch):  # noqa: F811
    """The office's clock not synchronised either (a closed LAN): its status said the report
    was taken, ``report_error`` None, ``report_day`` the gate's wrong day."""
    gate.clock.set_wall(ASKED - timedelta(days=3))
    office = FakeClock(start=ASKED, is_synced=False)
    monkeypatch.setenv("GATE_TOKEN", gate.token)
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": BASE + ":8000", "token_env": "GATE_TOKEN"}]}
    )
    kept = _KeptAll()
    collector = Collector(
        config, "postgresql://office/unused", clock=office,
        client=httpx.Client(transport=httpx.MockTransport(Network(gate))),
        target_factory=lambda dsn: kept, monotonic=lambda: office.monotonic_ns() / 1e9,
        report_interval_s=60,
    )  # fmt: skip
    source = config.kiosks[0]
    try:
        collector._reports(source, gate.token, BASE + ":8000", "gate-1")
        status = collector._status[source.url]
        assert kept.figures == {}
        assert "before the gate's log began: its clock is wrong, nothing kept" in str(
            status.report_error
        )
        assert status.report_day is None and status.last_report_at is None
    finally:
        collector.client.close()


def test_a_today_of_the_gates_log_is_kept_as_before(gate):  # noqa: F811
    with httpx.Client(transport=httpx.MockTransport(Network(gate))) as client:
        got = collect_gate_reports(client, _Kept(), BASE, "gate-1", gate.token, days=1)
    assert (got.today, got.error) == (FRIDAY, None)


# -- Retry-After -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "waits", "counts"),
    [
        ("9" * 19, [60, RETRY_AFTER_MAX_S - 1, RETRY_AFTER_MAX_S], [2, 0, 0, 2]),
        ("9" * 400, [60, RETRY_AFTER_MAX_S], [2, 0, 2]),
        ("600, 600", [60, 599, 600], [2, 0, 0, 2]),  # a proxy's two headers
        ("60, 600", [60, 599, 600], [2, 0, 0, 2]),  # the longest said
        ("600, soon", [60, 600], [2, 0, 2]),
        ("Wed, 21 Oct 2099 07:28:00 GMT", [60], [2, 2]),  # a date: nothing held, as before
        (",", [60], [2, 2]),
    ],
)
def test_a_long_or_listed_retry_after_holds_the_reports(monkeypatch, retry_after, waits, counts):
    assert _rounds(monkeypatch, retry_after, waits) == counts
