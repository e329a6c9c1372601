"""Thermometer driver choice and thermometry settings."""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from ._base import DeviceDeadlineMs, FilePath, Section, Seed


class _CheckedReadConfig(Section):
    """Settings of the checked read, shared by the real chip and the emulated one."""

    address: int = Field(0x5A, ge=0x03, le=0x77)
    """7-bit I2C address (factory 0x5A)."""
    pec: Literal["strict", "warn", "off"] = "strict"
    """PEC (CRC-8) check on reads; 'strict' rejects a bad PEC. docs/thermometer.md"""
    retries: int = Field(3, ge=0, le=10)
    """Re-reads of a failed check before a fault."""
    read_deadline_ms: DeviceDeadlineMs = 200
    """A read taking longer is a fault (hung bus)."""
    reopen_after_errors: int = Field(3, ge=1, le=50)
    """Consecutive bus errors (errno 121/110) before a bus reopen."""
    backoff_max_s: float = Field(30.0, ge=0.5, le=600)
    """Cap of the doubling wait between bus reopen attempts."""
    stuck_reads: int = Field(40, ge=0, le=10000)
    """Identical raw words this many reads in a row is a frozen sensor (0: off)."""


class Mlx90614Config(_CheckedReadConfig):
    type: Literal["mlx90614"] = "mlx90614"
    bus: int = Field(1, ge=0, le=31)
    """I2C bus number: /dev/i2c-N (Pi: 1)."""
    backend: Literal["smbus2", "blinka"] = "smbus2"
    """smbus2 on Raspberry Pi OS; blinka for the Adafruit busio stack."""


class FakeThermometerConfig(_CheckedReadConfig):
    type: Literal["fake"] = "fake"
    trace: FilePath | None = None
    """Optional trace CSV (t_s,object_c,ambient_c) the emulator plays from start."""
    ambient_c: float = Field(24.0, ge=-20.0, le=50.0)
    """Emulated air temperature at start."""
    seed: Seed = 0
    """Seed of the emulated sensor noise."""


ThermometerDriver = Annotated[Mlx90614Config | FakeThermometerConfig, Field(discriminator="type")]


class ThermometryConfig(Section):
    sample_hz: float = Field(8.0, gt=0, le=50)
    """Thermometer sampling rate while measuring."""
    fever_threshold_c: float = Field(37.3, ge=36.0, le=40.0)
    """Estimated body temperature at or above which is fever."""
    plausible_min_c: float = Field(34.0, ge=25.0, le=36.0)
    """Below this estimate the reading is implausible: re-measure."""
    plausible_max_c: float = Field(43.0, ge=38.0, le=45.0)
    """Above this estimate the reading is implausible."""
    normal_min_c: float = Field(35.5, ge=25.0, le=36.5)
    """The lowest estimate passed as a normal temperature: below it the sensor did not see the
    skin fill its view (too far, hair, a hat): re-measure, come closer."""
    presence_margin_c: float = Field(1.5, ge=0.2, le=15.0)
    """Object above ambient by this much means someone is there."""
    stable_window: int = Field(5, ge=2, le=64)
    """Samples in the window whose spread decides a stable reading."""
    stable_spread_c: float = Field(0.3, gt=0, le=2.0)
    """Max spread within the window for the reading to be stable."""
    ambient_spread_max_c: float = Field(0.5, gt=0, le=5.0)
    """Max ambient (sensor die) spread within the window: a drifting die means warm-up or thermal
    shock, when the object reading is not trustworthy."""
    measure_timeout_s: float = Field(6.0, gt=0, le=60)
    """No stable reading by then: reason no_temperature."""
    remeasure_on_fever: bool = True
    """Measure once more before denying for fever (a wrist can be warm)."""
    early_decision: bool = True
    """Decide a clearly normal temperature from the rising curve's fitted plateau, before the
    plateau itself; near the threshold, a fever or a poor fit still waits for it."""
    early_margin_c: float = Field(0.3, ge=0.1, le=2.0)
    """An early decision needs the whole plateau bound this far below the threshold."""

    @model_validator(mode="after")
    def _bands(self) -> "ThermometryConfig":
        # Each bound is checked alone above; together they must still leave a band that passes
        # as normal and one that is denied as fever, or the kiosk can never do its job.
        floor, name = max(
            (self.plausible_min_c, "plausible_min_c"), (self.normal_min_c, "normal_min_c")
        )
        if floor >= self.fever_threshold_c:
            raise ValueError(
                f"{name} ({floor:g}) must be below fever_threshold_c"
                f" ({self.fever_threshold_c:g}): no temperature would pass as normal"
            )
        if self.fever_threshold_c >= self.plausible_max_c:
            raise ValueError(
                f"fever_threshold_c ({self.fever_threshold_c:g}) must be below plausible_max_c"
                f" ({self.plausible_max_c:g}): a fever would be re-measured as implausible,"
                " never denied as fever"
            )
        return self


class ThermometerSection(Section):
    driver: ThermometerDriver = Field(default_factory=FakeThermometerConfig)
    """Which thermometer device to use."""
    thermometry: ThermometryConfig = Field(default_factory=ThermometryConfig)
