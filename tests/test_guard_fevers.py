"""A fever the guard finds by hand (registering a person or a vehicle, or a person without a
pass at the manual desk) raises the same alarm card as a fever at the gate and is counted by
the reports as one: the engine marks the guard's deny ``fever`` as the kiosk marks its own, and
the alarm model and the reports read that reason. No manual pass is ever granted to a fever
reading of someone the guard admits on their word alone."""

from __future__ import annotations

import re
from datetime import date

from guard_support import add_event, decided, login, nothing_recorded, post

from kiosk import stats
from kiosk.alarms import AlarmDesk, alarm_from_event, reason_codes

HAND_FEVER = ["guard_override", "fever"]  # what the engine records for a fever found by hand


def cards(html: str) -> list[str]:
    return re.findall(r'<div class="alarm kind-[^"]+".*?</button>', html, re.S)


def reasons(core) -> list[list[str]]:
    return [reason_codes(e["reasons"]) for e in core.store.events()]


def fevers_counted(core) -> int:
    """The daily report's fever count (the office's, the district's by the same reason)."""
    report = stats.compute_report(core.store.reader(), date(2026, 3, 2), "UTC")
    return report["fever_alarms"]["count"]


def registration(temp_c: float, decision: str = "manual_deny", **fields):
    return {
        "seq": 7,
        "ts": "2026-03-02T08:30:00+00:00",
        "decision": decision,
        "reasons": HAND_FEVER,
        "kind": "registration",
        "temp_c": temp_c,
        "direction": "in",
        "person": {"name": "王秀英", "unit": "3-402", "note": "看望母亲"},
    } | fields


def test_a_registration_denied_with_a_fever_reading_is_a_fever_alarm_about_that_person():
    alarm = alarm_from_event(registration(38.3))
    assert alarm is not None and alarm.kind == "fever" and alarm.detail == "fever"
    assert (alarm.holder, alarm.household, alarm.temp_c) == ("王秀英", "3-402", 38.3)
    assert (alarm.key, alarm.seqs, alarm.direction) == ("event:7", [7], "in")
    # stored rows hold the person as JSON text
    text = registration(38.3, person='{"name": "王秀英", "unit": "3-402"}')
    assert alarm_from_event(text).holder == "王秀英"
    # the reason raises it, not the number: a guard's deny the engine did not mark is no fever
    assert alarm_from_event(registration(38.3, reasons=["guard_override"])) is None


#: A car registered at the gate, one passenger feverish.
CAR = {
    "plate": "京A12345",
    "driver": "赵刚",
    "driver_temp_c": 36.4,
    "passengers": [{"name": "赵敏", "temp_c": 38.1}, {"name": "赵强", "temp_c": 36.6}],
    "resident_of": "5-101",
}


def vehicle_fever(**fields):
    """The guard's deny of ``CAR`` for its feverish passenger, as the log holds it."""
    return registration(38.1, **({"kind": "vehicle", "person": CAR} | fields))


def test_the_feverish_occupant_of_a_vehicle_is_named_on_its_alarm():
    alarm = alarm_from_event(vehicle_fever())
    assert (alarm.kind, alarm.holder, alarm.household, alarm.temp_c) == (
        "fever", "赵敏", "5-101", 38.1
    )  # fmt: skip


def test_the_desk_reads_a_fever_registered_by_hand_from_the_log(guard_core):
    add_event(
        guard_core,
        decision="manual_deny",
        reasons=tuple(HAND_FEVER),
        kind="registration",
        temp_c=38.3,
        operator="alice",
        person={"name": "王秀英", "unit": "3-402", "note": "看望母亲"},
    )
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    [alarm] = desk.open_alarms([])
    assert (alarm.kind, alarm.holder, alarm.temp_c, alarm.seq) == ("fever", "王秀英", 38.3, 1)


def test_a_fever_at_registration_is_refused_as_a_pass_and_its_deny_raises_an_alarm_card(
    guard_client, guard_core
):
    csrf = login(guard_client)
    form = {"name": "王秀英", "unit": "3-402", "reason": "看望母亲", "temp_c": "38.3"}
    refused = post(guard_client, "/guard/register/person", csrf, **form, decision="pass")
    assert refused.status_code == 400 and nothing_recorded(guard_core)
    assert guard_core.devices.gate.commands == []
    with decided(guard_client, guard_core) as seen:
        post(guard_client, "/guard/register/person", csrf, **form, record_deny="1")
    assert seen[0]["decision"] == "manual_deny"
    assert reasons(guard_core) == [HAND_FEVER] and fevers_counted(guard_core) == 1
    [card] = cards(guard_client.get("/guard?lang=zh-CN").text)
    assert 'class="alarm kind-fever"' in card and "发热" in card
    assert "王秀英 · 3-402" in card and "38.3 °C" in card
    assert 'href="/guard/passage/1"' in card
    assert [a["kind"] for a in guard_client.get("/guard/api/feed").json()["alarms"]] == ["fever"]
    # the feed row says it is an alarm, as a gate fever's row does
    [row] = guard_client.get("/guard/api/feed").json()["rows"]
    assert row["alarm"] == "fever"


def test_a_feverish_vehicle_registered_as_a_deny_raises_a_card_naming_its_plate(
    guard_client, guard_core
):
    csrf = login(guard_client)
    form = {"plate": "京A12345", "driver": "赵刚", "driver_temp": "36.4", "reason": "搬家"}
    with decided(guard_client, guard_core):
        post(guard_client, "/guard/register/vehicle", csrf, **form,
             p1_name="赵敏", p1_temp="38.1", record_deny="1")  # fmt: skip
    [card] = cards(guard_client.get("/guard?lang=zh-CN").text)
    assert "kind-fever" in card and "赵敏" in card and "38.1 °C" in card
    assert "车牌 京A12345" in card  # the guard looks for the car
    # the live page's refresh (guard.js renders ``who``) and a restarted console say the same
    [row] = guard_client.get("/guard/api/feed?lang=zh-CN").json()["alarms"]
    assert row["who"].endswith("车牌 京A12345")
    [again] = AlarmDesk(guard_core.store, guard_core.clock).open_alarms([])
    assert again.plate == "京A12345"


def test_a_person_without_a_pass_denied_with_a_fever_raises_an_alarm_card(guard_client, guard_core):
    csrf = login(guard_client)
    form = {"subject": "none", "reason": "老人没有手机", "temp_c": "38.0", "direction": "in"}
    with decided(guard_client, guard_core):
        post(guard_client, "/guard/manual", csrf, **form, decision="deny")
    [card] = cards(guard_client.get("/guard?lang=zh-CN").text)
    assert "kind-fever" in card and "38.0 °C" in card


def test_a_guard_confirming_a_gate_fever_by_hand_is_that_one_fever(guard_client, guard_core):
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.4, temp_object_c=35.0,
              household="3-201", holder="Li Wei", pass_id="c0ffee000001")  # fmt: skip
    csrf = login(guard_client)
    form = {"subject": "1", "reason": "复测仍发热", "temp_c": "38.6", "direction": "in"}
    with decided(guard_client, guard_core):
        post(guard_client, "/guard/manual", csrf, **form, decision="deny")
    # the guard's deny is not a second fever: one card, one fever in the reports
    assert reasons(guard_core) == [["fever"], ["guard_override"]]
    assert fevers_counted(guard_core) == 1
    [card] = cards(guard_client.get("/guard?lang=en").text)
    assert "38.4 °C" in card and "/guard/passage/1" in card


def test_a_guard_finding_a_fever_the_kiosk_read_as_normal_is_a_fever(guard_client, guard_core):
    add_event(guard_core, decision="deny", reasons=("no_pass",), temp_c=36.5, temp_object_c=34.0)
    csrf = login(guard_client)
    form = {"subject": "1", "reason": "手测发热", "temp_c": "38.2", "direction": "in"}
    with decided(guard_client, guard_core):
        post(guard_client, "/guard/manual", csrf, **form, decision="deny")
    assert reasons(guard_core)[-1] == HAND_FEVER and fevers_counted(guard_core) == 1
    [card] = cards(guard_client.get("/guard?lang=en").text)
    assert "kind-fever" in card and "38.2 °C" in card


def test_a_guard_deny_below_the_threshold_or_without_a_hand_reading_is_no_fever(
    guard_client, guard_core
):
    csrf = login(guard_client)
    form = {"subject": "none", "reason": "老人没有手机", "direction": "in", "decision": "deny"}
    for temp in ("37.2", None):
        with decided(guard_client, guard_core):
            post(guard_client, "/guard/manual", csrf, **form, **({"temp_c": temp} if temp else {}))
    assert reasons(guard_core) == [["guard_override"], ["guard_override"]]
    assert fevers_counted(guard_core) == 0 and cards(guard_client.get("/guard").text) == []


def test_a_person_without_a_pass_with_a_fever_is_not_let_through_by_hand(guard_client, guard_core):
    csrf = login(guard_client)
    form = {"subject": "none", "reason": "老人没有手机", "direction": "in"}
    for temp in ("38.0", "37.3"):  # the threshold itself is a fever
        refused = post(guard_client, "/guard/manual", csrf, **form, temp_c=temp, decision="pass")
        assert refused.status_code == 303 and nothing_recorded(guard_core)
        shown = guard_client.get(refused.headers["location"]).text
        assert f"体温 {temp} °C" in shown and "人工拒绝" in shown
    assert guard_core.devices.gate.commands == []
    audits = guard_core.store.audits()
    assert [a["detail"]["problem"] for a in audits[-2:]] == ["manual.fever_refused"] * 2
    assert {a["action"] for a in audits[-2:]} == {"manual_pass_failed"}
    # an implausible reading is named as one, not as a fever
    odd = post(guard_client, "/guard/manual", csrf, **form, temp_c="50", decision="pass")
    assert "43" in guard_client.get(odd.headers["location"]).text and nothing_recorded(guard_core)
    # without a fever the guard's word lets them through
    with decided(guard_client, guard_core) as seen:
        post(guard_client, "/guard/manual", csrf, **form, temp_c="36.6", decision="pass")
    assert seen[0]["decision"] == "manual_pass"
