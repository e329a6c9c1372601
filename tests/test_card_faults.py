"""A failing SD card under the gate: files it damaged, reads it fails, writes it refuses.

Each test puts the fault the card makes in a temp dir and checks what the guard, health and
the journal are told."""

from __future__ import annotations

import logging

from guard_support import login

from kiosk.calibration import Calibration, default_path

FITTED_AT = "2026-03-01T00:00:00+00:00"


def test_a_site_fit_the_card_damaged_is_named_on_the_devices_page_not_left_unsaid(
    guard_client, guard_core, caplog
):
    """calibration.json read back damaged (a bad sector, a torn copy) while the kiosk runs:
    it measures on with the fit it read last, as documented, but health said only
    ``fitted: true`` and nothing was logged, so nobody knew the next restart would drop the
    site's fit."""
    path = default_path(guard_core.data_dir)
    Calibration(offset_c=0.6, fitted_at=FITTED_AT).save(path)
    assert guard_core.health()["calibration"]["fitted"] is True
    path.write_bytes(path.read_bytes()[:40])  # the card gave back the first sector only
    with caplog.at_level(logging.ERROR, logger="kiosk.calibration"):
        report = guard_core.health()["calibration"]
        guard_core.health()
    assert report["fitted"] is True  # the fit in force stays
    assert "calibration.json" in report["problem"] and "corrupt" in report["problem"]
    logged = [r for r in caplog.records if r.name == "kiosk.calibration"]
    assert len(logged) == 1 and "calibration.json" in logged[0].getMessage()
    login(guard_client)
    page = guard_client.get("/guard/health?lang=en").text
    assert "The calibration file cannot be read" in page
    assert "the site fit read last (fitted on 2026-03-01)" in page


def test_a_site_fit_unreadable_since_the_start_is_not_shown_as_never_fitted(
    guard_client, guard_core
):
    """The fit was damaged before the kiosk first read it (a power cut, a restart): the kiosk
    measures on the default model and the Devices page said only "Not fitted for this site",
    sending the guard to calibrate a site that was calibrated, the damaged file unsaid."""
    path = default_path(guard_core.data_dir)
    path.write_bytes(b"")  # a copy a power cut left empty
    report = guard_core.health()["calibration"]
    assert report["fitted"] is False and "calibration.json" in report["problem"]
    login(guard_client)
    page = guard_client.get("/guard/health?lang=en").text
    assert "The calibration file cannot be read" in page
    assert "the default model" in page
    assert "Not fitted for this site" not in page


def test_a_calibration_file_read_whole_again_clears_the_problem(guard_core):
    path = default_path(guard_core.data_dir)
    path.write_bytes(b"{")
    assert guard_core.health()["calibration"]["problem"]
    Calibration(offset_c=0.6, fitted_at=FITTED_AT).save(path)
    assert guard_core.health()["calibration"] == {
        "fitted": True,
        "fitted_at": FITTED_AT,
        "problem": None,
    }
