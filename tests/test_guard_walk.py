"""Defects found walking a guard's shift through the console in Chinese (issue 17): each test
names what the guard saw."""

from __future__ import annotations

from guard_support import login, post

from kiosk.calibration import Calibration, default_path


def test_a_calibration_pair_whose_skin_is_not_above_the_air_is_refused_in_chinese(
    guard_client, guard_core
):
    csrf = login(guard_client)
    form = {"clinical_c": "36.6", "object_c": "30.0", "ambient_c": "31.5"}
    refused = post(guard_client, "/guard/calibration", csrf, **form)
    shown = guard_client.get(refused.headers["location"]).text
    assert "皮肤表面温度" in shown and "环境温度" in shown
    assert "object reading" not in shown and "sensor did not see" not in shown
    assert Calibration.load(default_path(guard_core.data_dir)).points == ()
    [audit] = [a for a in guard_core.store.audits() if a["action"].startswith("calibration")]
    assert audit["detail"]["problem"] == "cal.not_above_ambient"
    english = post(guard_client, "/guard/calibration?lang=en", csrf, **form)
    assert "not above" in guard_client.get(english.headers["location"]).text


def test_a_quarantine_ending_before_it_starts_is_refused_in_chinese(guard_client, guard_core):
    csrf = login(guard_client)
    form = {"household": "3-201", "from": "2026-03-05", "until": "2026-03-01"}
    refused = post(guard_client, "/guard/lists/quarantine/add", csrf, **form)
    shown = guard_client.get(refused.headers["location"]).text
    assert "Value error" not in shown and "until is before from" not in shown
    assert "结束日期" in shown and "开始日期" in shown
    assert not guard_core.lists.current.quarantine
    audit = guard_core.store.audits()[-1]
    assert audit["detail"]["problem"] == "err.until_before_from"
