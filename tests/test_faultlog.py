"""A device's faults in the journal: once per change, and bounded when it flaps for weeks."""

from __future__ import annotations

import logging

import pytest

from drivers.faultlog import FLAP_LINES, StateLog

log = logging.getLogger("drivers.test_faultlog")


@pytest.fixture
def lines(caplog):
    caplog.set_level("INFO", logger="drivers")
    return lambda: [r for r in caplog.records if r.levelno >= logging.INFO]


def _flap(faults: StateLog, clock, times: int, every_s: float) -> None:
    for _ in range(times):
        faults.fault("scanner lost: [Errno 5] Input/output error")
        clock.advance(every_s / 2)
        faults.recovered("connected on /dev/ttyACM0")
        clock.advance(every_s / 2)


def test_a_rare_fault_and_its_recovery_are_each_one_line(clock, lines):
    faults = StateLog(log, "scanner", clock)
    for _ in range(2):
        faults.fault("camera unplugged")
        faults.fault("camera unplugged")  # the retries: debug
        clock.advance(600)
        faults.recovered("camera delivering frames")
        faults.recovered("camera delivering frames")
        clock.advance(600)
    assert [r.levelname for r in lines()] == ["WARNING", "INFO"] * 2


def test_a_device_flapping_for_a_day_writes_a_bounded_number_of_lines(clock, lines):
    """A loose USB cable: lost and back every 4 s. Each change was a line, 1,800 an hour,
    43,200 a day in the journal on the card; the first and the state now must still show."""
    faults = StateLog(log, "scanner", clock)
    for _hour in range(24):
        _flap(faults, clock, times=900, every_s=4.0)
        faults.settle()  # the health loop asks every few seconds
    got = lines()
    assert len(got) <= 24 * (FLAP_LINES + 1)
    assert got[0].levelname == "WARNING" and "Input/output error" in got[0].getMessage()
    assert any("not logged" in r.getMessage() for r in got)


def test_the_state_after_flapping_is_said_once_the_hour_is_over(clock, lines):
    faults = StateLog(log, "scanner", clock)
    _flap(faults, clock, times=100, every_s=4.0)  # ends recovered, within the hour
    told = len(lines())
    faults.settle()
    assert len(lines()) == told  # within the hour: nothing yet
    clock.advance(3600)
    faults.settle()
    faults.settle()
    last = lines()[told:]
    assert len(last) == 1 and last[0].levelname == "INFO"
    message = last[0].getMessage()
    assert "connected on /dev/ttyACM0" in message
    assert f"{200 - FLAP_LINES} changes not logged" in message


def test_a_device_left_in_fault_after_flapping_is_said_to_be_in_fault(clock, lines):
    faults = StateLog(log, "scanner", clock)
    _flap(faults, clock, times=50, every_s=4.0)
    faults.fault("scanner lost: [Errno 19] No such device")
    clock.advance(3600)
    faults.settle()
    last = lines()[-1]
    assert last.levelname == "WARNING" and "No such device" in last.getMessage()
