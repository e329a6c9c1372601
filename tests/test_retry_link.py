"""A resident told to measure again who tries again is one passage, not two.

A kiosk passage denied for a measurement only (``no_temperature``, ``temp_implausible``: the
screen says measure again) followed by the same pass, the same way, within
``engine.retry_window_s``, is recorded with the flag ``retries:<seq>`` (the attempt it tries
again), and every face counts the attempts as one passage that ended as the last one did."""

from __future__ import annotations

from datetime import date

import sqlite_utils
from test_engine import Rig

from kiosk.stats import compute_report

DAY = date(2026, 3, 2)


def _report(rig: Rig) -> dict:
    return compute_report(sqlite_utils.Database(rig.log.path), DAY, "UTC")


def _no_temperature_then_again(rig: Rig, *, gap_s: float, body_c: float = 36.6) -> str:
    """The resident shows the pass and holds no wrist up (``no_temperature``); ``gap_s``
    later, shows it again and is measured at ``body_c``. Returns the pass."""
    text = rig.pass_text()
    rig.show(text)
    rig.run(8)  # the measurement times out, the deny is shown
    rig.run(gap_s)
    rig.show(text)
    rig.emulator.person_arrives(body_c)
    rig.run(8)
    rig.emulator.person_leaves()
    rig.run(1)
    return text


def test_a_resident_measured_again_after_no_temperature_is_one_passage(clock, tmp_path):
    rig = Rig(clock, tmp_path)
    try:
        _no_temperature_then_again(rig, gap_s=20)
        first, again = rig.events()
        assert (first["decision"], first["reasons"]) == ("deny", ["no_temperature"])
        assert again["decision"] == "pass"
        report = _report(rig)
    finally:
        rig.close()
    assert report["events"] == 2
    assert report["passages"] | {"by_hour": None} == {
        "total": 1, "passed": 1, "denied": 0, "by_hour": None,
    }  # fmt: skip
