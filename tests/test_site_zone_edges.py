"""Days and hours cut in the site's time zone, never the process's: retention's local cutoff
day, the household quota across a daylight-saving change, a kiosk whose system zone is not
its site's."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kiosk import lists, stats
from kiosk.clock import FakeClock
from kiosk.ledgers import MIGRATIONS, Ledgers
from kiosk.retention import purge
from kiosk.store import EventLog

LA = "America/Los_Angeles"


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
