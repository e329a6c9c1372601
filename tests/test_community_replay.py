"""Issue 18's days in virtual time, through the real engine (``checkpoint.replay``) where the
gate is involved and the ledgers on the same database afterwards."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from checkpoint.replay import parse_scenario, replay
from kiosk import lists, stats
from kiosk.clock import FakeClock
from kiosk.ledgers import MIGRATIONS, Ledgers
from kiosk.store import EventLog

TZ = ZoneInfo("Asia/Shanghai")
BACK = date(2026, 2, 10)
WANG = {"household": "3-2-701", "holder": "Wang Fang"}


def _gate_days():
    """Wang back on 10 Feb: the gate measures her on even days of the 14, at 09:00 each day;
    day 5 (14 Feb) she stays in and nobody checks; day 9 (18 Feb) the gate finds a fever."""
    steps, t = [], 0.0
    for n in range(14):
        if n:  # well after the last passage has been decided and committed
            t += 12
            steps.append({"at_s": t, "clock_jump_s": 86400})
        if n % 2 or n == 4:
            continue
        t += 3
        fever = n == 8
        steps.append({
            "at_s": t, "pass": WANG, "body_c": 38.4 if fever else 36.6, "direction": "in",
            "expect": {"decision": "deny" if fever else "pass",
                       "reasons": ["fever"] if fever else ["ok"]},
        })  # fmt: skip
    return steps


def _ledger_log(db, clock):
    return EventLog(db, "kiosk-1", clock, "NORMAL", migrations=[lists.MIGRATIONS, *MIGRATIONS])


@pytest.mark.slow  # integration: fourteen days of a community replayed (CI runs it)
def test_a_returnees_fourteen_days_with_a_missed_check_and_a_fever_at_the_gate(tmp_path):
    db = tmp_path / "kiosk.db"
    clock = FakeClock(start=datetime(2026, 2, 10, 8, 0, tzinfo=TZ))
    with _ledger_log(db, clock).open() as log:  # registered on the day back, before the gate
        wang = Ledgers.build(log, clock, TZ, 37.3).observation.register(
            name="Wang Fang", household="3-2-701", phone="13812345678", origin="Wuhan",
            date_back=BACK, actor="manager",
        )  # fmt: skip
    scenario = parse_scenario(
        {
            "name": "returnee",
            "start": datetime(2026, 2, 10, 9, 0, tzinfo=TZ),
            "steps": _gate_days(),
        },  # fmt: skip
        "returnee.toml",
    )
    result = replay(scenario, db_path=db)
    assert result.failures == []

    clock.set_wall(datetime(2026, 2, 24, 10, 0, tzinfo=TZ))
    with _ledger_log(db, clock).open() as log:
        led = Ledgers.build(log, clock, TZ, fever_threshold_c=37.3)
        for n in range(1, 14, 2):  # the helper's checks at the door on odd days, 19:00
            at = datetime.combine(BACK + timedelta(days=n), datetime.min.time(), TZ)
            led.observation.record_temperature(wang.id, 36.5, "helper", at=at + timedelta(hours=19))
        checks = led.observation.checks(wang.id)
        assert [c.source for c in checks].count("gate") == 6
        alarms = [(a.kind, a.day) for a in led.observation.alarms()]
        assert alarms == [("missed_check", date(2026, 2, 14)), ("fever", date(2026, 2, 18))]
        fever_day = stats.compute_report(log.reader(), date(2026, 2, 18), TZ)["community"]
        assert fever_day["fevers"]["gate"] == 1 and fever_day["returnees"]["observing"] == 1
        led.observation.set_status(wang.id, "escalated", actor="manager")
        assert led.observation.alarms() == []
        today = stats.compute_report(log.reader(), date(2026, 2, 24), TZ)["community"]
        assert today["returnees"]["escalated"] == 1 and today["returnees"]["observing"] == 0


def test_a_quarantined_households_requests_over_its_days(tmp_path):
    clock = FakeClock(start=datetime(2026, 2, 10, 8, 0, tzinfo=TZ))
    log = EventLog(tmp_path / "k.db", "gate-1", clock, "NORMAL",
                   migrations=[lists.MIGRATIONS, stats.MIGRATIONS, *MIGRATIONS])  # fmt: skip
    with log.open():
        from kiosk.compound import statuses
        from kiosk.lists import ListStore

        store = ListStore(log, clock)
        quarantine = store.add_quarantine("5-1-702", None, BACK, BACK + timedelta(days=13), "m")
        led = Ledgers.build(log, clock, TZ, 37.3)
        desk = led.services
        for day in range(3):
            confined = quarantine.quarantine_for("5-1-702", None, clock.now().date()) is not None
            food = desk.open("5-1-702", "food", "guard Zhao", confined=confined)
            rubbish = desk.open("5-1-702", "rubbish", "guard Zhao", confined=confined)
            clock.advance(3600)
            desk.take(food.id, "helper Chen")
            desk.take(rubbish.id, "helper Chen")
            marks = statuses(log.reader(), clock.now().date(), store.current)
            assert marks["5-1-702"] == ("quarantined", "open_request")
            clock.advance(3600)
            desk.done(food.id, "helper Chen")
            desk.done(rubbish.id, "helper Chen")
            if day == 2:
                desk.open("5-1-702", "medicine", "guard Zhao", confined=confined)
            clock.advance(22 * 3600)
        report = stats.compute_report(log.reader(), BACK + timedelta(days=2), TZ)["community"]
        assert report["service_requests"] == {"opened": 3, "done": 2, "open_at_end": 1,
                                              "by_kind": {"food": 1, "medicine": 1,
                                                          "rubbish": 1}}  # fmt: skip
        assert report["quarantined_households"] == 1
        done = desk.requests(household="5-1-702")
        assert sum(r.state == "done" for r in done) == 6
        assert {r.taken_by for r in done if r.state == "done"} == {"helper Chen"}
