"""An emptied row that never had a household (a visitor's pass) is no outing at the office
either: the gate's purge marks the rows that had one (``kiosk.record.PURGED_HOUSEHOLD``) and
the pull carries it (docs/event-log.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pgfixture import Network
from support import kiosk_api

from kiosk.clock import FakeClock
from kiosk.people import Person, forget
from kiosk.store import EventDraft
from office.district import district_report
from office.gatereports import collect_reports
from office.pg import PgTarget
from office.pull import pull

pytest_plugins = ("pgfixture",)
DAY = date(2026, 3, 2)
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
QUOTA = {"enabled": True, "exits": 1, "period_days": 2}


def _district(tmp_path, pg_dsn, forgotten: Person, *rows: tuple[str, str | None]):
    north = kiosk_api(
        tmp_path / "n.db",
        "gate-north",
        FakeClock(start=START),
        scopes=("logs:read", "logs:personal"),
        config={"policy": {"quota": QUOTA}},
    )
    try:
        for h, (who, household) in enumerate(rows):
            north.clock.set_wall(START + timedelta(hours=h + 1))
            north.store.append(
                EventDraft(direction="out", decision="pass", household=household, holder=who)
            )
        forget(north.store, forgotten, north.clock.now(), actor="t")
        with PgTarget(pg_dsn) as target, Network(north).client() as client:
            pull("http://gate-north", north.token, target, client=client, fields=["household"])
            collect_reports(client, target, "http://gate-north", "gate-north", north.token)
        return district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    finally:
        north.store.close()


@pytest.mark.slow
def test_a_visitors_forgotten_exit_is_no_outing_at_the_office(tmp_path, pg_dsn):
    exits = _district(
        tmp_path, pg_dsn, Person.of(name="Visitor Li"), ("Qian Hong", "2-202"), ("Visitor Li", None)
    )
    assert (exits["exits"], exits["households"], exits["over_quota_households"]) == (1, 1, 0)


@pytest.mark.slow
def test_a_residents_forgotten_outing_is_still_an_outing_at_the_office(tmp_path, pg_dsn):
    exits = _district(
        tmp_path, pg_dsn, Person.of(name="Zhao Min"), ("Qian Hong", "2-202"), ("Zhao Min", "1-101")
    )
    assert exits["households"] is None and exits["over_quota_households"] is None


@pytest.mark.slow
def test_the_office_counts_a_forgotten_outing_as_the_gate_does(tmp_path, pg_dsn):
    """A resident's forget on the day: the gate counts the day's outings (2) and says the
    households unknown; the office said the outings unknown too (every figure nulled by one
    masked or purged row). One count for both (``kiosk.stats.DayOutings``)."""
    exits = _district(
        tmp_path, pg_dsn, Person.of(name="Zhao Min"), ("Zhao Min", "1-101"), ("Qian Hong", "2-202")
    )
    assert exits["exits"] == 2
    assert [exits[k] for k in ("households", "histogram", "max", "over_quota_households")] == [
        None
    ] * 4
    [compound] = exits["compounds"]
    assert compound["exits"] == 2 and compound["households"] is None
