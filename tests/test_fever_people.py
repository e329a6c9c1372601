"""A car with two feverish occupants is two fevers, not one: the office's 发热 counts people,
as 进出人次 does. The guard registers the car through the console's real route; every report
that counts fevers (the gate's daily report and its export, the guard's statistics, the
handover, the district from a masked pull) is checked against the count by hand."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from guard_support import decided, login, post
from pgfixture import Network, make_kiosk
from test_fleet_pg import pull_pg

from kiosk import stats
from kiosk.categories import FeverishPeople, report_rows
from kiosk.clock import FakeClock
from kiosk.roster import summary_since
from kiosk.store import EventDraft
from office.district import district_report

pytest_plugins = ("pgfixture",)

DAY = date(2026, 3, 2)


def _register_feverish_car(guard_client, guard_core) -> dict:
    """A car whose driver (38.2) and one of two passengers (38.6) have a fever, recorded as
    the deny the console offers; a person refused at the gate with a fever besides."""
    csrf = login(guard_client)
    with decided(guard_client, guard_core):
        post(guard_client, "/guard/register/vehicle", csrf, plate="京A12345", driver="赵刚",
             driver_temp="38.2", p1_name="赵敏", p1_temp="38.6", p2_name="赵强",
             p2_temp="36.6", reason="搬家", record_deny="1")  # fmt: skip
    [car] = guard_core.store.events()
    assert car["kind"] == "vehicle" and "fever" in car["reasons"]
    return car


def test_a_car_with_two_feverish_occupants_is_two_fevers_at_the_gate(guard_client, guard_core):
    _register_feverish_car(guard_client, guard_core)
    report = stats.compute_report(guard_core.store.reader(), DAY, "UTC")
    # Before: 1 (one event carrying ``fever``).
    assert report["community"]["fevers"]["gate"] == 2
    assert report["fever_alarms"]["count"] == 1  # one alarm card, for the car
    assert report["fever_alarms"]["people"] == 2
    _everywhere_say(guard_client, guard_core, report, 2)


@pytest.mark.slow
def test_the_district_counts_each_feverish_occupant_from_a_masked_pull(
    guard_client, guard_core, tmp_path, pg_dsn
):
    car = _register_feverish_car(guard_client, guard_core)
    gate = make_kiosk(tmp_path / "gate.db", "gate-1", FakeClock(start=datetime(2026, 3, 2, 9,
                      tzinfo=UTC)))  # fmt: skip
    try:
        gate.store.append(EventDraft(
            direction="in", decision="manual_deny", reasons=tuple(car["reasons"]),
            kind="vehicle", operator="alice", temp_c=car["temp_c"], person=car["person"],
        ))  # fmt: skip
        gate.store.append(EventDraft(direction="in", decision="deny", reasons=("fever",),
                                     household="1-101", holder="H", temp_c=38.4))  # fmt: skip
        pull_pg("http://gate-1", gate.token, pg_dsn, Network(gate))  # logs:read: masked
        report = district_report(pg_dsn, DAY, "UTC")
    finally:
        gate.store.close()
    assert report["community"]["fevers"]["gate"] == 3  # before: 2
    assert report["fever_alarms"] == {
        "count": 2,
        "people": 3,
        "times": ["09:00:00", "09:00:00"],
        "at": ["2026-03-02T09:00:00+00:00", "2026-03-02T09:00:00+00:00"],
    }
    [by_gate] = report["by_gate"]
    assert by_gate["community"]["fevers"]["gate"] == 3
    assert by_gate["fever_alarms"] == 2


def _fever(core, *, pass_id=None, household=None, holder=None, kind="passage", **extra) -> int:
    decision = "manual_deny" if kind != "passage" else "deny"
    reasons = ("guard_override", "fever") if kind != "passage" else ("fever",)
    event = core.store.append(EventDraft(
        direction="in", decision=decision, reasons=reasons, pass_id=pass_id,
        household=household, holder=holder, kind=kind, temp_c=38.6,
        operator="alice" if kind != "passage" else None, **extra,
    ))  # fmt: skip
    return int(event.seq)


def test_a_resident_denied_twice_for_a_fever_is_one_feverish_person(guard_client, guard_core):
    """发热 counts people: a retry after a fever deny is a new passage, not a new person. A
    pass holder denied twice (the guard confirming the second) is one, a person registered by
    hand twice (no pass: the name and unit typed) one, two refusals nobody can be named for two
    (each event its own person); the alarms stay one per event."""
    login(guard_client)
    _fever(guard_core, pass_id="PF", household="F-301", holder="Liu Qi")
    again = _fever(guard_core, pass_id="PF", household="F-301", holder="Liu Qi")
    guard_core.store.append(EventDraft(
        direction="in", decision="manual_deny", reasons=("guard_override",), pass_id="PF",
        household="F-301", holder="Liu Qi", operator="alice", flags=(f"overrides:{again}",),
        temp_c=38.6,
    ))  # fmt: skip
    for _ in range(2):  # as the console records it: no household, no holder
        _fever(guard_core, kind="registration",
               person={"name": "Xiao Ming", "unit": "H-101", "note": "visit"})  # fmt: skip
    _fever(guard_core)
    _fever(guard_core)
    report = stats.compute_report(guard_core.store.reader(), DAY, "UTC")
    # Before: 6 people, one per event carrying ``fever``.
    assert report["community"]["fevers"]["gate"] == 4
    assert report["fever_alarms"]["people"] == 4
    assert report["fever_alarms"]["count"] == 6  # the alarms: one card per event
    _everywhere_say(guard_client, guard_core, report, 4)


def _register_feverish(guard_client, guard_core, csrf: str, **form: str) -> None:
    with decided(guard_client, guard_core):
        post(guard_client, "/guard/register/person", csrf, reason="看望母亲", temp_c="38.6",
             record_deny="1", **form)  # fmt: skip


def test_a_person_registered_by_hand_twice_with_a_fever_is_one_feverish_person(
    guard_client, guard_core
):
    """A registration carries no pass and no holder: the person is told apart by the name and
    the unit typed (as the gate's lists match them: ``Li Lei`` is ``LI LEI``), through the
    console's real route. Another person of the same unit is another."""
    csrf = login(guard_client)
    _register_feverish(guard_client, guard_core, csrf, name="Li Lei", unit="2-101")
    _register_feverish(guard_client, guard_core, csrf, name="LI  LEI", unit="２-101")
    _register_feverish(guard_client, guard_core, csrf, name="Han Meimei", unit="2-101")
    assert [e["kind"] for e in guard_core.store.events()] == ["registration"] * 3
    report = stats.compute_report(guard_core.store.reader(), DAY, "UTC")
    # Before: 3, each registration its own person.
    assert report["community"]["fevers"]["gate"] == 2
    assert report["fever_alarms"] == report["fever_alarms"] | {"count": 3, "people": 2}
    now = guard_core.clock.now()
    summary = summary_since(
        guard_core.store.reader(), guard_core.config.site.kiosk_id,
        now - timedelta(hours=8), now + timedelta(minutes=1), 0,
    )  # fmt: skip
    assert summary["fevers"] == 2


def test_a_car_refused_twice_for_a_fever_counts_each_feverish_occupant_once(
    guard_client, guard_core
):
    """The same car registered again (a retry) is the same two feverish people (by plate and
    name, the hottest so many of its occupants as it counted feverish), not four."""
    _register_feverish_car(guard_client, guard_core)
    _register_feverish_car_again(guard_client, guard_core)
    report = stats.compute_report(guard_core.store.reader(), DAY, "UTC")
    assert report["fever_alarms"]["count"] == 2
    assert report["community"]["fevers"]["gate"] == 2  # before: 4


def _register_feverish_car_again(guard_client, guard_core) -> None:
    csrf = login(guard_client)
    with decided(guard_client, guard_core):
        post(guard_client, "/guard/register/vehicle", csrf, plate="京a 12345", driver="赵刚",
             driver_temp="38.4", p1_name="赵强", p1_temp="36.5", p2_name="赵敏",
             p2_temp="38.7", reason="搬家", record_deny="1")  # fmt: skip


def test_two_people_masked_to_the_same_initial_in_one_unit_are_two_feverish_people():
    """A masked pull gives the registered names as initials (``Z.``) beside a unit in clear:
    ``Zhao Min`` and ``Zhou Qiang`` of ``2-101`` must not become one person ``Z.``."""
    people = FeverishPeople()
    for seq, name in ((1, "Z."), (2, "Z."), (3, "赵*")):
        person = json.dumps({"name": name, "unit": "2-101", "temp_c": 38.5})
        people.add({"kiosk_id": "gate-1", "seq": seq, "kind": "registration", "person": person,
                    "pass_id": None, "household": None, "holder": None})  # fmt: skip
    assert people.total == 3


def _everywhere_say(guard_client, guard_core, report, people: int) -> None:
    """The report's export, the guard's statistics page and the handover count as the report."""
    exported = {(c, i): v for c, i, v in report_rows(report)[1:]}
    assert exported[("fevers", "gate")] == people
    page = guard_client.get("/guard/stats?day=2026-03-02").text
    fevers = re.search(r'<div class="kpi fever"><div class="v">(\d+)</div>', page)
    assert fevers is not None and fevers.group(1) == str(people)
    now = guard_core.clock.now()
    summary = summary_since(
        guard_core.store.reader(), guard_core.config.site.kiosk_id,
        now - timedelta(hours=8), now + timedelta(minutes=1), 0,
    )  # fmt: skip
    assert summary["fevers"] == people


def test_the_reports_fever_count_is_refusals_not_the_alarm_boards_cards(guard_core):
    """The alarm board counts a person refused again for a fever within 10 minutes on the
    card still open ("3 times": one card) while the report counts each refusal (3): its
    words called them "fever alarms" (发热告警, 发热警报时间), which the guard read against
    the board's one card. They say refusals, the field keeping its name."""
    from kiosk.alarms import AlarmDesk
    from ui import i18n
    from ui.report_words import words

    who = {"pass_id": "P2", "household": "2-201", "holder": "Han Mei"}
    first = _fever(guard_core, **who)
    for flags in ((f"retries:{first}",), ()):  # measured again, then one more try
        guard_core.clock.advance(120)
        _fever(guard_core, **who, flags=flags)
    desk = AlarmDesk(guard_core.store, guard_core.clock, tz="UTC")
    [card] = [a for a in desk.open_alarms([]) if a.kind == "fever"]
    report = stats.compute_report(guard_core.store.reader(), DAY, "UTC")
    assert card.times == 3 == report["fever_alarms"]["count"]
    for lang, said in (("en", "Fever refusals"), ("zh-CN", "发热拒绝次数")):
        assert words(lang)("r.report.fever_alarms") == said
    assert i18n.t("en", "stats.fever_list") == "Fever refusals"
    assert i18n.t("zh-CN", "stats.fever_list") == "发热拒绝时间"
