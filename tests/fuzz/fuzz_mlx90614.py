"""Fuzz the MLX90614's wire bytes (drivers/mlx90614.py): a transport that answers each read
with fuzz bytes (often a fuzzed word with its correct PEC, as a chip with a flaky front end
would send), or fails with an I2C error.

``read()`` may only return a reading inside the calibrated ranges or raise ``SensorFault``
of its own (one wrapping an unexpected exception, "unexpected driver error", is a defect:
that path exists for bus libraries, not for the driver's own parsing). The EEPROM reads
(emissivity, config register) likewise.
"""

from __future__ import annotations

import errno
import logging

import atheris
from _fuzz import instrumented, run

with instrumented():
    from drivers.mlx90614 import TA_RANGE_C, TO_RANGE_C, Mlx90614, read_pec
    from kiosk.backoff import Backoff
    from kiosk.clock import FakeClock
    from kiosk.devices import SensorFault

logging.disable(logging.CRITICAL)


class _Bus:
    def __init__(self, fdp: atheris.FuzzedDataProvider) -> None:
        self.fdp = fdp

    def write_then_read(self, address: int, out: bytes, count: int) -> bytes:
        fdp = self.fdp
        kind = fdp.ConsumeIntInRange(0, 7)
        if kind == 0:
            raise OSError(errno.EIO, "I/O error")
        if kind == 1:
            return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 5))
        lsb, msb = fdp.ConsumeIntInRange(0, 255), fdp.ConsumeIntInRange(0, 255)
        return bytes([lsb, msb, read_pec(address, out[0], lsb, msb)])

    def write(self, address: int, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def _check_fault(fault: SensorFault) -> None:
    if fault.__cause__ is not None:
        raise AssertionError(f"the driver's own parsing raised: {fault}") from fault.__cause__


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    clock = FakeClock()
    pec = fdp.PickValueInList(["strict", "warn", "off"])
    driver = Mlx90614(
        lambda: _Bus(fdp),
        clock,
        pec=pec,
        retries=2,
        backoff=Backoff(0.001, 0.001),
        sleep=lambda s: None,
    )
    while fdp.remaining_bytes():
        clock.advance(fdp.ConsumeIntInRange(0, 1000) / 100)
        what = fdp.ConsumeIntInRange(0, 9)
        try:
            if what == 0:
                driver.read_emissivity()
            elif what == 1:
                driver.read_config1()
            else:
                reading = driver.read()
                if not TA_RANGE_C[0] <= reading.ambient_c <= TA_RANGE_C[1]:
                    raise AssertionError(f"ambient out of range: {reading}")
                if not TO_RANGE_C[0] <= reading.object_c <= TO_RANGE_C[1]:
                    raise AssertionError(f"object out of range: {reading}")
        except SensorFault as fault:
            _check_fault(fault)
        driver.health()


if __name__ == "__main__":
    run(one_input)
