"""Defects from a shift walk: a vehicle's fever card names the car (its plate) beside the
feverish occupant, masked by the viewer's role as the rest of the card is; a calibration file
that cannot be read is said on the calibration page in the guard's language, with what the
technician does, instead of the core's English."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from guard_support import login, post
from test_guard_fevers import vehicle_fever

from kiosk.alarms import alarm_from_event
from kiosk.calibration import default_path
from ui.guard.display import ALL_FIELDS, GUARD_CLEAR_FIELDS, alarm_view


def test_a_vehicle_fever_alarm_carries_the_plate_of_the_car():
    alarm = alarm_from_event(vehicle_fever())
    assert (alarm.kind, alarm.holder, alarm.household, alarm.plate) == (
        "fever", "赵敏", "5-101", "京A12345"
    )  # fmt: skip
    # a stored row holds the person as JSON text: the desk reading the log after a restart
    stored = alarm_from_event(vehicle_fever(person='{"plate": "沪B99999", "driver": "钱七"}'))
    assert stored.plate == "沪B99999"
    # a person's card has no plate
    person = vehicle_fever(kind="registration", person={"name": "王秀英", "unit": "3-402"})
    assert alarm_from_event(person).plate is None


def test_the_card_shows_the_plate_as_the_role_sees_plates():
    alarm = alarm_from_event(vehicle_fever())
    utc = ZoneInfo("UTC")
    guard = alarm_view(alarm, "zh-CN", utc, GUARD_CLEAR_FIELDS)["who"]
    assert guard == "赵敏 · 5-101 · 车牌 京A12345"
    assert alarm_view(alarm, "en", utc, ALL_FIELDS)["who"] == "赵敏 · 5-101 · Plate 京A12345"
    # a viewer allowed no personal field sees the plate masked as households and units are
    masked = alarm_view(alarm, "zh-CN", utc, frozenset())["who"]
    assert "京A12345" not in masked and masked.endswith("车牌 *****45")
    assert "赵敏" not in masked and "5-101" not in masked


#: What the core says of the file (English, for the technician): never on the guard's page.
CORE_WORDS = ("is corrupt", "Expecting", "fix it, or put the default")


def test_a_corrupt_calibration_file_is_said_in_the_guards_language_with_what_to_do(
    guard_client, guard_core
):
    path = default_path(guard_core.data_dir)
    path.write_text('{"offset_c": 0.1, "points": [', encoding="utf-8")  # cut off mid-write
    login(guard_client)
    page = guard_client.get("/guard/calibration?lang=zh-CN").text
    assert "校准文件无法读取" in page and "请告知技术人员" in page
    assert f"sudo kiosk-admin calibrate --data {guard_core.data_dir} show" in page
    assert f"sudo kiosk-admin calibrate --data {guard_core.data_dir} reset --yes" in page
    assert str(path) in page  # which file to restore from the backup or move away
    assert not any(words in page for words in CORE_WORDS), page
    assert "当前使用出厂默认校准" not in page  # the kiosk keeps what it read last: not said
    english = guard_client.get("/guard/calibration?lang=en").text
    assert "The calibration file cannot be read" in english and "Tell the technician" in english
    assert not any(words in english for words in CORE_WORDS)


def test_a_pair_recorded_over_a_corrupt_calibration_file_is_refused_in_the_guards_words(
    guard_client, guard_core
):
    path = default_path(guard_core.data_dir)
    path.write_text("{not json", encoding="utf-8")
    csrf = login(guard_client)
    form = {"clinical_c": "36.8", "object_c": "34.9", "ambient_c": "24.0"}
    refused = post(guard_client, "/guard/calibration", csrf, **form)
    shown = guard_client.get(refused.headers["location"]).text
    assert "校准文件无法读取" in shown and not any(words in shown for words in CORE_WORDS)
    assert path.read_text(encoding="utf-8") == "{not json"  # nothing written over it
    [audit] = [a for a in guard_core.store.audits() if a["action"].startswith("calibration")]
    assert audit["detail"]["problem"] == "cal.file_unreadable"


def test_one_persons_alarms_from_passes_spelling_the_household_otherwise_are_one_card():
    """Before: a quarantined resident tried an old card (``Ａ-101``, before input was folded)
    and then the new one (``a-101``) a minute apart: two cards for one person, while the
    gate's rules take the two for one household (``kiosk.lists.same_text``)."""
    from kiosk.alarms import Alarm

    first = Alarm("e:1", "quarantine", "2026-03-02T02:00:00+00:00", 1,
                  household="Ａ-101", holder="Wang Fang")  # fmt: skip
    again = Alarm("e:2", "quarantine", "2026-03-02T02:01:00+00:00", 2,
                  household="a-101", holder="ＷＡＮＧ ＦＡＮＧ")  # fmt: skip
    other = Alarm("e:3", "quarantine", "2026-03-02T02:01:00+00:00", 3,
                  household="A-102", holder="Wang Fang")  # fmt: skip
    assert first.absorbs(again) and not first.absorbs(other)
