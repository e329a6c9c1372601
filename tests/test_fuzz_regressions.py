"""Defects the coverage-guided fuzzers (tests/fuzz/, docs/system-tests.md) found, each pinned
with the minimised input inline: no atheris is needed to run these."""

from __future__ import annotations

import json

from kiosk.calibration import Calibration, CalibrationStore


def test_a_calibration_number_too_large_for_a_float_is_corrupt_and_the_store_keeps_the_good_one(
    tmp_path,
):
    """fuzz_calibration: ``"curve": 1000...0`` (400 digits) raised OverflowError out of
    ``Calibration.load``, past the store's ``CalibrationError`` and into the reading loop."""
    path = tmp_path / "calibration.json"
    Calibration(offset_c=0.7).save(path)
    store = CalibrationStore(path)
    doc = Calibration().to_dict()
    doc["model"]["curve"] = 10**400
    path.write_text(json.dumps(doc))
    assert store.get().offset_c == 0.7
    assert store.problem is not None and "is corrupt" in store.problem
