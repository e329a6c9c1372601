"""Days and hours cut in the site's time zone, never the process's: retention's local cutoff
day, the household quota across a daylight-saving change, a kiosk whose system zone is not
its site's."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk import lists, stats
from kiosk.clock import FakeClock
from kiosk.config.policy import PolicySection, QuotaConfig
from kiosk.config.thermometer import ThermometryConfig
from kiosk.days import day_bounds, local_day
from kiosk.history import PassageHistory
from kiosk.ledgers import MIGRATIONS, Ledgers
from kiosk.passes import TrustList, issue_pass
from kiosk.policy import PassageInputs, PolicyState, decide, quota_reached
from kiosk.retention import purge
from kiosk.stats import daily_report
from kiosk.store import EventDraft, EventLog, format_ts
from kiosk.thermometry import Temperature
from ui.guard.display import local_time

LA = "America/Los_Angeles"
BERLIN = ZoneInfo("Europe/Berlin")
KEY = Ed25519PrivateKey.from_private_bytes(b"\x52" * 32)
TWO_DAYS = QuotaConfig(enabled=True, exits=1, period_days=2)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=datetime(2026, 2, 12, 20, 0, tzinfo=UTC))  # 12:00 in Los Angeles


@pytest.fixture
def log(tmp_path, clock):
    sets = [lists.MIGRATIONS, stats.MIGRATIONS, *MIGRATIONS]
    store = EventLog(tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=sets)
    yield store.open()
    store.close()


def test_a_returnee_is_forgotten_by_the_sites_cutoff_day_not_the_utc_one(log, clock):
    # Observed 10-12 February (local dates, both ends inclusive), cleared. Kept 30 days: on
    # 14 March at 17:00 in Los Angeles (00:00 UTC on the 15th) the cutoff is 12 February
    # 16:00 local: the observation still ran then (to the end of the 12th), so the returnee
    # stays, as the lists' quarantine entries ending that day do. The UTC date of the cutoff
    # (the 13th) forgot them eight hours early.
    led = Ledgers.build(log, clock, LA, 37.3)
    person = led.observation.register(
        name="Wang", household="3-2-701", phone="", origin="Wuhan",
        date_back=date(2026, 2, 10), actor="manager", days=3,
    )  # fmt: skip
    assert person.observation_until == date(2026, 2, 12)
    led.observation.set_status(person.id, "cleared", actor="manager")
    clock.set_wall(datetime(2026, 3, 15, 0, 0, tzinfo=UTC))
    kept = purge(log, 30, clock.now(), tz=LA)
    assert kept.ledger_rows_purged["returnees"] == 0
    assert led.observation.person(person.id).name == "Wang"
    clock.set_wall(datetime(2026, 3, 15, 9, 0, tzinfo=UTC))  # 02:00 local: the 13th's cutoff
    gone = purge(log, 30, clock.now(), tz=LA)
    assert gone.ledger_rows_purged["returnees"] == 1
    assert led.observation.person(person.id).name == ""


# One outing every two days across a clock change (Berlin: 29 March 02:00 -> 03:00, 25 October
# 03:00 -> 02:00). Out on Saturday at 10:00, a resident comes back on Monday at 10:00, and the
# office says the same: the period runs to the same local time two days later, 47 real hours
# across the spring change, 49 across the autumn one (docs/policy.md).
SPRING_OUT = datetime(2026, 3, 28, 10, 0, tzinfo=BERLIN)
AUTUMN_OUT = datetime(2026, 10, 24, 10, 0, tzinfo=BERLIN)
ACROSS_A_CHANGE = [
    (SPRING_OUT, datetime(2026, 3, 30, 9, 59, tzinfo=BERLIN), True),
    (SPRING_OUT, datetime(2026, 3, 30, 10, 0, tzinfo=BERLIN), False),  # 47 h later
    (AUTUMN_OUT, datetime(2026, 10, 26, 9, 30, tzinfo=BERLIN), True),  # 48.5 h later
    (AUTUMN_OUT, datetime(2026, 10, 26, 10, 0, tzinfo=BERLIN), False),
]


def _gate_denies(first: datetime, again: datetime) -> bool:
    _code, first_pass = issue_pass(KEY, "1-101", "Wang", now=first - timedelta(days=1))
    code, _ = issue_pass(KEY, "1-101", "Li", now=first - timedelta(days=1))
    history = PassageHistory()
    history.record(first_pass.pass_id, "1-101", "out", "pass", first.astimezone(UTC))
    state = PolicyState(TrustList([("office", KEY.public_key())]), lists.Lists(), history)
    inputs = PassageInputs("out", code, Temperature("ok", 36.6, 34.6, 22.0, None))
    cfg = PolicySection.model_validate({"quota": TWO_DAYS.model_dump()})
    decision = decide(inputs, state, again.astimezone(UTC), cfg, ThermometryConfig(), BERLIN)
    return "quota_exceeded" in decision.reasons


@pytest.mark.parametrize(("first", "again", "over"), ACROSS_A_CHANGE)
def test_the_gate_counts_two_days_to_the_same_local_time_across_a_clock_change(first, again, over):
    assert _gate_denies(first, again) is over


@pytest.mark.parametrize(("first", "again", "over"), ACROSS_A_CHANGE)
def test_the_daily_report_counts_the_quota_as_the_gate_across_a_clock_change(
    reporting_store, clock, first, again, over
):
    for when, decision in ((first, "pass"), (again, "manual_pass")):
        clock.set_wall(when.astimezone(UTC))
        reporting_store.append(
            EventDraft(direction="out", decision=decision, reasons=("ok",), household="1-101")
        )
    report = daily_report(reporting_store.reader(), again.date(), BERLIN, TWO_DAYS)
    assert report["exits_per_household"]["over_quota_households"] == int(over)


@pytest.mark.parametrize(
    ("starts", "ends", "allowed"),
    [
        # Overnight into the autumn change: 20:00 to 20:00 the next day is 25 real hours.
        (datetime(2026, 10, 24, 20, 0), datetime(2026, 10, 25, 20, 0), False),
        # Into the spring change: 20:00 to 20:30 the next day is 23.5 real hours.
        (datetime(2026, 3, 28, 20, 0), datetime(2026, 3, 29, 20, 30), True),
    ],
)
def test_a_shifts_length_is_real_hours_across_a_clock_change(log, clock, starts, ends, allowed):
    # The console hands the roster local times in the site's zone (handover.local). Two times
    # with the same zone subtract as wall-clock times: the 24-hour limit was an hour off.
    from kiosk.community import CommunityError
    from kiosk.roster import Roster

    rota = Roster(log, clock)
    start, end = starts.replace(tzinfo=BERLIN), ends.replace(tzinfo=BERLIN)
    clock.set_wall(start.astimezone(UTC) - timedelta(days=1))  # rostered the day before
    if allowed:
        shift = rota.add_shift("gate-1", "Zhao", start, end, actor="manager")
        assert shift.ends_at - shift.starts_at == end.astimezone(UTC) - start.astimezone(UTC)
    else:
        with pytest.raises(CommunityError, match="within 24 hours"):
            rota.add_shift("gate-1", "Zhao", start, end, actor="manager")


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("2026-03-29T02:30", "no such time"),  # the clocks go from 02:00 to 03:00
        ("2026-03-10T08:00+00:00", "without a UTC offset"),  # not what datetime-local sends
    ],
)
def test_a_shift_time_the_site_never_shows_is_refused(typed, why):
    # 02:30 on the spring change's night was taken as 03:30 (the manager typed one time and
    # the roster showed another); an offset was dropped and the time read as Berlin's.
    from kiosk.community import CommunityError
    from ui.guard.community.handover import local

    with pytest.raises(CommunityError, match=why):
        local(typed, BERLIN)


def test_a_shift_time_the_autumn_change_repeats_is_its_first(typed="2026-10-25T02:30"):
    from ui.guard.community.handover import local

    assert local(typed, BERLIN).astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert local("2026-03-29T03:00", BERLIN).astimezone(UTC) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )


ZONES = (
    "Asia/Shanghai", "UTC", "Europe/Berlin", "America/New_York", "America/Los_Angeles",
    "Australia/Sydney", "Asia/Tehran", "Asia/Kolkata", "Asia/Kathmandu", "America/Santiago",
    "Pacific/Chatham",
)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    first=st.datetimes(datetime(2000, 1, 1), datetime(2037, 12, 31), timezones=st.just(UTC)),
    gap_s=st.integers(40 * 3600, 56 * 3600),
)
def test_the_report_counts_the_quota_as_the_gate_in_any_zone(zone, first, gap_s):
    """The gate's rule (``quota_reached`` on the passage history) and the daily report's
    (``stats.over_quota_households``, the office's district report too) agree about an
    outing 40 to 56 hours after the last, wherever the site is and whatever clock change
    lies between."""
    from office.district import _memory_events

    again = first + timedelta(seconds=gap_s)
    history = PassageHistory()
    history.record("p1", "1-101", "out", "pass", first)
    gate = quota_reached(TWO_DAYS, history, "1-101", "resident", again, tz=zone)
    rows = [
        (seq, "gate-1", format_ts(when), "out", decision, ["ok"], None, "1-101", None, None, [])
        for seq, when, decision in ((1, first, "pass"), (2, again, "manual_pass"))
    ]
    day = local_day(again, zone)
    report = stats.compute_report(_memory_events(rows), day, zone, TWO_DAYS)
    assert report["exits_per_household"]["over_quota_households"] == int(gate)
    start, end = day_bounds(day, zone)
    assert start <= format_ts(again) < end  # the day cut as the event log's text sorts


@pytest.fixture(params=["UTC", "America/Los_Angeles", "Asia/Kathmandu"])
def process_tz(request, monkeypatch):
    """The process's own zone (a Pi image keeps UTC) other than the site's, restored after."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


def test_hours_days_and_shown_times_follow_the_site_not_the_process_zone(
    process_tz, reporting_store, clock
):
    shanghai = ZoneInfo("Asia/Shanghai")
    hours = PolicySection.model_validate(
        {"mode": "temperature_only", "hours": {"enabled": True, "mode": "closed"}}
    )
    inputs = PassageInputs("out", None, Temperature("ok", 36.6, 34.6, 22.0, None))
    state = PolicyState(TrustList([]), lists.Lists(), PassageHistory())

    def reasons(local: datetime) -> tuple[str, ...]:
        when = local.replace(tzinfo=shanghai).astimezone(UTC)
        return decide(inputs, state, when, hours, ThermometryConfig(), shanghai).reasons

    assert reasons(datetime(2026, 3, 2, 8, 29, 59)) == ("outside_hours",)
    assert reasons(datetime(2026, 3, 2, 8, 30)) == ("ok",)
    assert reasons(datetime(2026, 3, 2, 17, 29, 59, 900000)) == ("ok",)
    assert reasons(datetime(2026, 3, 2, 17, 30)) == ("outside_hours",)
    # The last tenth of a second of 1 March and the first instant of the 2nd, in Shanghai.
    for local in (datetime(2026, 3, 1, 23, 59, 59, 900000), datetime(2026, 3, 2, 0, 0)):
        clock.set_wall(local.replace(tzinfo=shanghai).astimezone(UTC))
        reporting_store.append(EventDraft(direction="in", decision="pass", reasons=("ok",)))
    first = daily_report(reporting_store.reader(), date(2026, 3, 1), "Asia/Shanghai")
    second = daily_report(reporting_store.reader(), date(2026, 3, 2), "Asia/Shanghai")
    assert (first["events"], first["by_hour"][23]) == (1, 1)
    assert (second["events"], second["by_hour"][0]) == (1, 1)
    ts = format_ts(datetime(2026, 3, 1, 16, 0, tzinfo=UTC))
    assert local_time(ts, shanghai, "%Y-%m-%d %H:%M") == "2026-03-02 00:00"


#: Days whose midnight the clock skipped (the spring change at 00:00: 01:00 summer time came
#: straight after 23:59:59), and the instant each began, when the clock went on.
SKIPPED_MIDNIGHTS = [
    ("Africa/Cairo", date(2024, 4, 26), datetime(2024, 4, 25, 22, 0, tzinfo=UTC)),
    ("America/Santiago", date(2024, 9, 8), datetime(2024, 9, 8, 4, 0, tzinfo=UTC)),
    ("America/Havana", date(2024, 3, 10), datetime(2024, 3, 10, 5, 0, tzinfo=UTC)),
]


def _text(when: datetime) -> str:
    """A UTC instant as ``day_bounds`` writes it (the 19 characters events sort by)."""
    return when.strftime("%Y-%m-%dT%H:%M:%S")


@pytest.mark.parametrize(("zone", "day", "began"), SKIPPED_MIDNIGHTS)
def test_a_day_whose_midnight_the_clock_skipped_begins_when_the_clock_went_on(zone, day, began):
    """No 00:00 that day: its first instant reads 01:00 summer time, and the day before ends
    there. One rule for every place a local day begins (``kiosk.days.day_start``): the
    reports' bounds, retention's reach, the staffed hours' midnight."""
    from kiosk.days import day_start

    tz = ZoneInfo(zone)
    assert day_start(day, tz) == began
    assert began.astimezone(tz).replace(tzinfo=None) == datetime.combine(
        day, datetime.min.time()
    ) + timedelta(hours=1)
    assert local_day(began - timedelta(microseconds=1), tz) == day - timedelta(days=1)
    assert day_bounds(day, tz) == (
        _text(began),
        _text(day_start(day + timedelta(days=1), tz)),
    )
    assert day_bounds(day - timedelta(days=1), tz)[1] == _text(began)


def test_a_day_whose_midnight_the_autumn_change_repeats_begins_at_its_first_pass():
    """Havana, 2024-11-03: 01:00 summer time became 00:00 standard time, so 00:00-01:00 came
    twice. The day began at the first 00:00 (04:00 UTC) and held both passes: 25 hours."""
    from kiosk.days import day_start

    havana = ZoneInfo("America/Havana")
    day = date(2024, 11, 3)
    assert day_start(day, havana) == datetime(2024, 11, 3, 4, 0, tzinfo=UTC)
    assert day_start(day + timedelta(days=1), havana) - day_start(day, havana) == timedelta(
        hours=25
    )
    assert day_bounds(day, havana) == ("2024-11-03T04:00:00", "2024-11-04T05:00:00")


def test_a_night_written_as_two_spans_meeting_at_a_skipped_midnight_is_one_shift():
    """Cairo, 2024-04-26: the clocks went from 23:59:59 to 01:00. Hours written 20:00-00:00
    and 00:00-08:00 are one night, also that night: the night guard who signed in at 19:50
    was signed out at the change (01:00 summer time, an hour's grace after) instead of 08:00,
    as the second span's start read 01:00, not midnight."""
    from datetime import time

    from kiosk.roster import HANDOVER_GRACE, session_end, staffed_stretches

    cairo = ZoneInfo("Africa/Cairo")
    now = datetime(2024, 4, 25, 19, 50, tzinfo=cairo)
    staffed = staffed_stretches([(time(20), time(0)), (time(0), time(8))], cairo, now)
    assert (datetime(2024, 4, 25, 20, tzinfo=cairo), datetime(2024, 4, 26, 8, tzinfo=cairo)) in [
        (a.astimezone(cairo), b.astimezone(cairo)) for a, b in staffed
    ]
    assert session_end([], staffed, now) == datetime(2024, 4, 26, 8, tzinfo=cairo) + HANDOVER_GRACE
