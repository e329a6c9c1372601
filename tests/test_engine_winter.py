"""The gate outdoors in winter: the sensor die drifting (a box's heater, the sun, carried into
the guard hut), air outside the calibration's trusted range, in virtual time on the engine."""

from __future__ import annotations

import pytest

from tests.test_engine import Rig


@pytest.fixture
def rig(clock, tmp_path):
    r = Rig(clock, tmp_path)
    yield r
    r.close()


@pytest.mark.slow
def test_a_visitor_measured_while_the_die_drifts_is_not_passed_until_it_settles(rig):
    # The kiosk carried from a 16 degC porch into the warm guard hut: the die warms 3 degC/min,
    # too slowly for one stable window (0.03 degC in 0.6 s) to see it, fast enough that the
    # thermopile's compensation lags (docs/thermometer.md, thermal shock).
    rig.emulator.set_ambient(16.0)
    rig.run(5)
    rig.emulator.ramp_ambient(3.0, until_c=26.0)
    rig.run(30)
    assert "drifting" in rig.thermometer.health().detail
    rig.resident_comes(8)
    [decision] = rig.decisions()
    assert decision["decision"] == "deny"
    assert decision["reasons"] == ["no_temperature"]
    assert [c.open_ for c in rig.gate.commands] == []
    rig.emulator.person_leaves()
    rig.run(240)  # the ramp reaches 26 degC, and a minute later the die is steady
    assert rig.thermometer.health().state == "ok"
    rig.resident_comes(8)
    assert [d["decision"] for d in rig.decisions()] == ["deny", "pass"]


def test_in_air_outside_the_trusted_range_a_visitor_is_sent_to_the_guard_at_once(rig):
    # 6 degC at the gate in January: a wrist says little about the core (docs/thermometer.md).
    # Measuring again cannot help; asking for gloves off and the pass again sends every visitor
    # round the same loop. The visitor is told why and to see the guard, with no alarm per
    # person (the gate's standing state is the guard's, not one card a visitor).
    rig.emulator.set_ambient(6.0)
    rig.run(5)
    rig.resident_comes(8)
    [decision] = rig.decisions()
    assert decision["decision"] == "deny"
    assert decision["reasons"] == ["air_out_of_range"]
    prompts = [m["prompt"] for m in rig.messages if m["type"] == "state"]
    assert "measure_again" not in prompts
    assert ("guard_needed", "raised") not in rig.alarms()
    [event] = rig.events()
    assert event["reasons"] == ["air_out_of_range"]
    assert event["temp_ambient_c"] == pytest.approx(6.0, abs=0.3)


def test_hours_outside_the_trusted_range_stand_as_one_alarm_not_one_per_visitor(rig):
    rig.emulator.set_ambient(6.0)  # 16:30 at the gate (08:30 UTC), January air
    rig.run(15)
    for _ in range(3):
        rig.resident_comes(8)
        rig.emulator.person_leaves()
        rig.run(5)
    assert [d["reasons"] for d in rig.decisions()] == [["air_out_of_range"]] * 3
    assert rig.alarms() == [("air_out_of_range", "raised")]
    detail = rig.engine.faults["air"]
    assert "6.0" in detail and "since 16:30" in detail and "by hand" in detail
    assert rig.engine.deciding  # the kiosk still decides: everyone else's pass is checked
    rig.emulator.set_ambient(16.0)  # noon sun on the box
    rig.run(30)
    assert "air" in rig.engine.faults  # back for a moment is not back: a minute in range
    rig.run(40)
    assert "air" not in rig.engine.faults
    assert rig.alarms() == [("air_out_of_range", "raised"), ("air_out_of_range", "cleared")]


def test_the_air_alarm_raised_before_ntp_says_no_1970_time_and_is_dated_once_set(tmp_path):
    """A winter gate booted without network time raised the air alarm 'since 08:00' (1970's
    midnight in Shanghai) and the devices page kept saying so all day after NTP set the clock:
    raised on a clock not set it says no clock time; once the clock is set it says since when,
    dated by the monotonic time (the alarm is not raised again)."""
    from datetime import UTC, datetime

    from kiosk.clock import FakeClock

    unset = FakeClock(start=datetime(1970, 1, 1, 0, 0, tzinfo=UTC), is_synced=False)
    rig = Rig(unset, tmp_path)
    try:
        rig.emulator.set_ambient(6.0)
        rig.run(15)
        detail = rig.engine.faults["air"]
        assert "since 08:0" not in detail and "clock is not set" in detail
        assert "6.0" in detail and "by hand" in detail
        unset.set_wall(datetime(2026, 1, 12, 8, 30, 15, tzinfo=UTC))  # NTP: 16:30:15 there
        unset.is_synced = True
        rig.run(1)
        detail = rig.engine.faults["air"]
        assert "since 16:30" in detail and "not set" not in detail
        assert rig.alarms() == [("air_out_of_range", "raised")]
    finally:
        rig.close()


@pytest.mark.parametrize(
    ("lang", "label", "todo", "banner"),
    [
        ("en", "air at the thermometer", "clinical thermometer", "please see the guard"),
        ("zh-CN", "测温处气温", "医用体温计", "请到保安处"),
    ],
)
def test_the_guard_sees_one_card_saying_to_check_by_hand_and_the_kiosk_a_banner(
    lang, label, todo, banner
):
    from zoneinfo import ZoneInfo

    from kiosk.alarms import alarm_from_message, device_alarms
    from ui.guard.display import alarm_view
    from ui.kiosk_screen import banner_view

    raised = {"type": "alarm", "alarm": "air_out_of_range", "state": "raised", "mono_ns": 1}
    card = alarm_from_message(raised, "2026-01-12T07:10:00+00:00")
    [standing] = device_alarms({"air": "fault"})
    assert card is not None and card.key == standing.key == "device:air"
    view = alarm_view(card, lang, ZoneInfo("UTC"), frozenset())
    assert view["detail"] == label and todo in view["todo"] and view["time"]
    notes = banner_view({"faults": {"air": "air 6.0 degC ..."}}, lang)
    assert len(notes) == 1 and banner in notes[0]


def test_in_air_outside_the_trusted_range_a_feverish_visitor_is_not_measured_again(rig):
    """The reading in that air is no temperature, a fever's or not: no re-measure on a fever
    it cannot say, the guard measures by hand at once."""
    rig.emulator.set_ambient(6.0)
    rig.run(5)
    rig.show(rig.pass_text())
    rig.emulator.person_arrives(39.5)
    rig.run(8)
    [decision] = rig.decisions()
    assert decision["reasons"] == ["air_out_of_range"]
    assert decision["temp_c"] >= rig.config.thermometer.thermometry.fever_threshold_c
    prompts = [m["prompt"] for m in rig.messages if m["type"] == "state"]
    assert "measure_again" not in prompts
