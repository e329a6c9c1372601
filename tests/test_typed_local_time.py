"""A local time a person types for the site (a pass's start, a shift's ends), read by one
rule (``kiosk.days.local_instant``): one the spring change skips is refused, one the autumn
change repeats is the occurrence the clock says it can be."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk.clock import FakeClock, FlooredClock
from kiosk.days import NoSuchTime, local_instant
from kiosk.passes import PassStartError, pass_start

BERLIN = ZoneInfo("Europe/Berlin")
#: The autumn change in Berlin: 03:00 CEST is 02:00 CET, 02:00-03:00 happens twice.
FIRST_0230 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
SECOND_0230 = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET


def test_a_typed_time_the_autumn_change_repeats_is_the_one_nearest_the_clock():
    typed = datetime(2026, 10, 25, 2, 30)
    assert local_instant(typed, BERLIN) == FIRST_0230  # nothing to hold it to: the first
    assert local_instant(typed, BERLIN, near=SECOND_0230 - timedelta(minutes=5)) == SECOND_0230
    assert local_instant(typed, BERLIN, near=FIRST_0230 + timedelta(minutes=20)) == FIRST_0230
    # A time known to have passed rules an occurrence out, however near it is.
    floor = FIRST_0230 + timedelta(minutes=20)  # 02:50 CEST has passed
    assert local_instant(typed, BERLIN, near=floor, not_before=floor) == SECOND_0230
    plain = datetime(2026, 10, 25, 9, 0)
    assert local_instant(plain, BERLIN, near=SECOND_0230) == datetime(
        2026, 10, 25, 8, 0, tzinfo=UTC
    )


def test_a_typed_time_the_spring_change_skips_is_refused():
    with pytest.raises(NoSuchTime, match="2026-03-29T02:30: no such time in Europe/Berlin"):
        local_instant(datetime(2026, 3, 29, 2, 30), BERLIN)


def _fall_back_night() -> FlooredClock:
    """Berlin, 25 Oct 2026: a synchronised passage at 02:50 CEST, the power went; the gate
    boots without network at 02:25 CET (35 minutes after it), its clock at the shutdown's."""
    base = FakeClock(start=datetime(2026, 10, 25, 0, 50, tzinfo=UTC), is_synced=False)
    clock = FlooredClock(base)
    clock.raise_floor(datetime(2026, 10, 25, 0, 50, tzinfo=UTC))
    base.advance(35 * 60)  # the floor: 01:25 UTC, 02:25 CET
    return clock


def test_a_start_typed_in_the_repeated_hour_after_a_power_cut_is_the_second_occurrence():
    """The guard reads 02:30 (CET) off a phone and types it: it was read as 02:30 CEST
    (00:30 UTC), refused as before 02:25, a time known to have passed."""
    clock = _fall_back_night()
    assert pass_start(clock, datetime(2026, 10, 25, 2, 30), BERLIN, days=1) == SECOND_0230


def test_an_unsynchronised_clock_without_a_floor_rules_no_occurrence_out_by_its_reading():
    """The CLI's clock keeps no floor: unsynchronised and 30 minutes fast it reads 02:50 CEST
    at a real 02:20 CEST. Its reading is no time known to have passed, so a typed 02:20 is
    the occurrence nearest it (CEST), not the next hour's because the reading was after it."""
    clock = FakeClock(start=FIRST_0230 + timedelta(minutes=20), is_synced=False)
    typed = datetime(2026, 10, 25, 2, 20)
    assert pass_start(clock, typed, BERLIN, days=1) == FIRST_0230 - timedelta(minutes=10)


def test_a_start_refused_in_the_repeated_hour_shows_the_times_with_their_offsets():
    clock = _fall_back_night()
    with pytest.raises(PassStartError) as early:
        pass_start(clock, datetime(2026, 10, 25, 2, 10), BERLIN, days=1)  # both have passed
    assert early.value.code == "before_floor"
    said = "the start 2026-10-25 02:10 UTC+01:00 is before 2026-10-25 02:25 UTC+01:00"
    assert said in str(early.value)
    assert "it reads 2026-10-25 02:25 UTC+01:00" in str(early.value)


def test_a_start_typed_in_the_hour_the_spring_change_skips_is_refused():
    base = FakeClock(start=datetime(2026, 3, 29, 0, 20, tzinfo=UTC), is_synced=False)
    with pytest.raises(PassStartError) as skipped:
        pass_start(base, datetime(2026, 3, 29, 2, 30), BERLIN, days=1)
    assert skipped.value.code == "skipped" and "no such time" in str(skipped.value)


@contextmanager
def _berlin_console(data_dir, monkeypatch, clock):
    """A gate in Berlin on ``clock``, its console signed in; the client and the core."""
    from fastapi.testclient import TestClient
    from guard_support import BASE, close_core, login, make_app, make_core

    from kiosk.config import parse_config

    config = parse_config({"site": {"timezone": "Europe/Berlin"}})
    core = make_core(data_dir, clock, monkeypatch, config)
    try:
        with TestClient(make_app(core), base_url=BASE) as client:
            login(client)
            yield client, core
    finally:
        close_core(core)


def _pass_form(client, start: str) -> dict[str, str]:
    from guard_support import hidden_fields

    page = client.get("/guard/passes").text
    typed = {"household": "3-402", "holder": "Wang", "days": "1", "start": start}
    return hidden_fields(page, "pass-form") | typed


def test_the_guard_console_reads_a_start_in_the_repeated_hour_as_the_clock_allows(
    data_dir, monkeypatch
):
    from guard_support import send

    from kiosk import queries

    with _berlin_console(data_dir, monkeypatch, _fall_back_night()) as (client, core):
        assert (
            send(client, "/guard/passes", _pass_form(client, "2026-10-25T02:30")).status_code == 200
        )
        [row] = queries.issued_passes(core.store)
        assert row.detail["valid_from"] == SECOND_0230.isoformat()


def test_the_guard_console_refuses_a_start_the_spring_change_skips(data_dir, monkeypatch):
    from guard_support import refused_with, send

    from kiosk import queries
    from ui import i18n

    clock = FakeClock(start=datetime(2026, 3, 29, 0, 20, tzinfo=UTC), is_synced=False)
    with _berlin_console(data_dir, monkeypatch, clock) as (client, core):
        refused = send(client, "/guard/passes", _pass_form(client, "2026-03-29T02:30"))
        said = i18n.t("zh-CN", "err.pass_start_skipped", reading="2026-03-29 01:20")
        assert refused_with(client, refused) == said
        assert queries.issued_passes(core.store) == []


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T20:00:00+00:00",
        "1999-12-31T23:59",
        "3000-01-01T00:00",
    ],
)
def test_a_typed_time_off_the_days_a_person_may_type_is_refused_as_a_value_error(text):
    """Every typed instant is read by ``typed_instant``: one at the calendar's ends raised
    OverflowError where it met a zone or a pass's days, past every ``except ValueError``."""
    from kiosk.days import OutsideDays, typed_instant

    with pytest.raises(OutsideDays, match="outside 2000-01-01..2999-12-31"):
        typed_instant(text)


def test_a_typed_time_on_the_days_a_person_may_type_is_read_as_written():
    from kiosk.days import typed_instant

    assert typed_instant("2000-01-01T00:00") == datetime(2000, 1, 1)
    assert typed_instant("2999-12-31T23:59:59-14:00").utcoffset() == timedelta(hours=-14)
    with pytest.raises(ValueError, match="too long"):
        typed_instant("2026-03-02T08:30:00.000000+05:30:00.000000 ")
