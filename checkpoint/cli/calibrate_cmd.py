"""``kiosk calibrate``: clinical readings beside kiosk readings, the site fit, emissivity."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from kiosk.calibration import (
    Calibration,
    CalibrationError,
    default_path,
    fit_file,
    record_clinical_pair,
    reset_file,
    update_file,
)
from kiosk.devices import DeviceFault

from .errors import CliError, UsageError, refuse_root_over
from .parsers import Verbs, add_group, add_verb, path_arg
from .store_args import INSTALLED_CONFIG, add_config_arg, held_for_writing, load_verb_config


def _celsius(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a temperature: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a temperature: {text!r}")
    return value


def register(sub: Verbs) -> None:
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--data", metavar="DIR", type=path_arg, help="data dir (default: $KIOSK_DATA, else ./data)"
    )
    add_group(sub, "calibrate", _actions, dest="calibrate_verb", parents=[data])


def _actions(actions: Verbs) -> None:
    """record clinical readings beside kiosk readings and fit the site correction

    Per-site temperature calibration. Take a clinical thermometer reading of a person right
    after the kiosk measured them, `add` it with the kiosk's object and ambient readings, then
    `fit`. The fitted correction is stored in DATA/calibration.json and used by the kiosk from
    then on. See docs/thermometer.md.

    Examples:
      sudo kiosk-admin calibrate add --clinical 36.8 --object 33.7 --ambient 23.5
      sudo kiosk-admin calibrate fit     # once the pairs are in (3 or more: gain too)
      sudo kiosk-admin calibrate show"""
    add = add_verb(actions, "add", _add)
    add.add_argument("--clinical", type=_celsius, required=True, help="clinical thermometer, degC")
    add.add_argument("--object", type=_celsius, required=True, help="kiosk object reading, degC")
    add.add_argument("--ambient", type=_celsius, required=True, help="kiosk ambient reading, degC")

    add_verb(actions, "fit", _fit)

    show = add_verb(actions, "show", _show)
    show.add_argument("--json", action="store_true", help="print the stored JSON")

    remove = add_verb(actions, "remove", _remove)
    remove.add_argument("number", type=int, help="pair number as `show` lists it")

    reset = add_verb(actions, "reset", _reset)
    reset.add_argument("--yes", action="store_true", help="confirm")

    emissivity = add_verb(actions, "emissivity", _emissivity)
    add_config_arg(
        emissivity,
        "kiosk config naming the thermometer (default: $KIOSK_CONFIG, which kiosk-admin"
        " sets to the daemon's; with neither, the emulated sensor)",
    )
    emissivity.add_argument("--set", type=float, metavar="E", help="new emissivity, 0.1..1.0")
    emissivity.add_argument("--yes", action="store_true", help="confirm the EEPROM write")


def _path(args: argparse.Namespace, *, writes: bool = False) -> Path:
    """DATA/calibration.json. An action that ``writes`` it, run as root (plain ``sudo``) on a
    data dir another user owns, is refused first: the file it replaced was left root's, and
    the guard console's Calibration page could not record or fit after it."""
    data = Path(args.data or os.environ.get("KIOSK_DATA") or "data")
    if not data.is_dir():
        raise UsageError(
            f"data dir {data} does not exist; give the kiosk's with --data DIR"
            " (the daemon's: /var/lib/kiosk)"
        )
    if writes:
        refuse_root_over(data, "calibrate")
    return default_path(data)


@contextlib.contextmanager
def _writing(args: argparse.Namespace) -> Iterator[Path]:
    """DATA/calibration.json for an action that writes it, the data dir's lock held shared
    while it does (``store_args.held_for_writing``): refused while a restore runs, which put
    the archive's file back over a pair recorded or a fit made under it."""
    path = _path(args, writes=True)
    with held_for_writing(path.parent):
        yield path


def _add(args: argparse.Namespace) -> int:
    """record one clinical reading next to the kiosk's readings

    Record one pair: the clinical reading (degC) and the kiosk's object and ambient
    readings of the same person, taken together.

    Examples:
      sudo kiosk-admin calibrate add --clinical 36.8 --object 33.7 --ambient 23.5"""
    try:
        with _writing(args) as path:
            cal = record_clinical_pair(
                path, args.clinical, args.object, args.ambient, now=datetime.now(UTC), source="cli"
            )
    except CalibrationError as exc:
        raise UsageError(str(exc)) from None
    estimate = cal.estimate(args.object, args.ambient)
    print(
        f"pair {len(cal.points)} recorded: clinical {args.clinical:.2f}, kiosk estimate"
        f" {estimate:.2f} ({args.clinical - estimate:+.2f} degC)"
    )
    return 0


def _fit(args: argparse.Namespace) -> int:
    """fit the site correction to the recorded pairs and store it

    Fit offset (and gain, curve when the pairs support them) and store it. Refuses,
    naming the pair, when one pair is far off the fit.

    Examples:
      sudo kiosk-admin calibrate fit"""
    try:
        with _writing(args) as path:
            cal, report = fit_file(path, datetime.now(UTC))
    except CalibrationError as exc:
        raise CliError(str(exc)) from None
    print(
        f"fitted {'+'.join(report.terms)} to {report.points} pairs: offset {cal.offset_c:+.3f},"
        f" gain {cal.gain:.4f}, curve {cal.curve:.5f}; residual rms {report.rms_c:.2f},"
        f" max {report.max_abs_c:.2f} degC (pair {report.worst_index})"
    )
    return 0


def _load(args: argparse.Namespace) -> Calibration:
    try:
        return Calibration.load(_path(args))
    except CalibrationError as exc:
        raise CliError(str(exc)) from None


def _show(args: argparse.Namespace) -> int:
    """show the fitted correction and the readings recorded, numbered

    Examples:
      sudo kiosk-admin calibrate show
      sudo kiosk-admin calibrate show --json"""
    cal = _load(args)
    if not _path(args).exists():  # a fresh kiosk, or a wrong --data: say where it looked
        print(
            f"kiosk calibrate: no {_path(args)}: never calibrated here, the factory model",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(cal.to_dict(), indent=2))
        return 0
    fitted = f"fitted {cal.fitted_at} ({'+'.join(cal.fit_terms)})" if cal.fitted_at else "default"
    print(
        f"model: body = object {cal.offset_c:+.3f} + {cal.gain:.4f}*d + {cal.curve:.5f}*d^2"
        f"  (d = object - ambient; {fitted})"
    )
    print(f"trusted for ambient {cal.ambient_min_c:g}..{cal.ambient_max_c:g} degC")
    if not cal.points:
        print("no pairs recorded")
    for number, (point, residual) in enumerate(zip(cal.points, cal.residuals(), strict=True), 1):
        print(
            f"{number:4d}  clinical {point.clinical_c:5.2f}  object {point.object_c:5.2f}"
            f"  ambient {point.ambient_c:5.2f}  residual {round(residual, 2) + 0.0:+.2f}"
            f"  {point.recorded_at}"
            f"  ({point.source})"
        )
    return 0


def _remove(args: argparse.Namespace) -> int:
    """remove one recorded pair by its number

    Examples:
      sudo kiosk-admin calibrate remove 3     # the number calibrate show gives"""
    try:
        with _writing(args) as path:
            cal = update_file(path, lambda c: c.without_point(args.number))
    except CalibrationError as exc:
        raise UsageError(str(exc)) from None
    print(f"removed pair {args.number}; {len(cal.points)} left (run `fit` again)")
    return 0


def _reset(args: argparse.Namespace) -> int:
    """go back to the default model (pairs are kept)

    Needs --yes. A corrupt file is renamed aside (calibration.json.corrupt-TIME) and the
    default model written in its place; its pairs cannot be read, so none are kept.

    Examples:
      sudo kiosk-admin calibrate reset --yes"""
    if not args.yes:
        raise UsageError("reset needs --yes")
    try:
        with _writing(args) as path:
            _cal, aside = reset_file(path, datetime.now(UTC))
    except CalibrationError as exc:
        raise CliError(str(exc)) from None
    if aside is not None:
        print(f"the corrupt file is kept as {aside}; model reset to the default, no pairs")
    else:
        print("model reset to the default; recorded pairs kept")
    return 0


def _emissivity(args: argparse.Namespace) -> int:
    """read (or with --set and --yes, write) the sensor's emissivity (EEPROM 0x24)

    Reads the MLX90614 emissivity. `--set E --yes` erases and rewrites EEPROM 0x24 and
    reads it back; power-cycle the sensor afterwards. EEPROM cells wear out: do not script
    this.

    Examples:
      sudo kiosk-admin calibrate emissivity                 # read it
      sudo kiosk-admin calibrate emissivity --set 0.98 --yes"""
    from drivers.clocksync import system_clock
    from drivers.mlx90614 import Mlx90614
    from drivers.thermometer import build_thermometer

    if args.set is not None:
        if not 0.1 <= args.set <= 1.0:
            raise UsageError("emissivity must be within 0.1..1.0")
        if not args.yes:
            raise UsageError(
                "writing EEPROM 0x24 needs --yes (the sensor must then be power-cycled)"
            )
    cfg = load_verb_config(args.config)
    if cfg.thermometer.driver.type == "fake" and args.set is not None:
        raise UsageError(
            "no --config or $KIOSK_CONFIG names the MLX90614, and the emulated sensor's"
            f" EEPROM is not worth a write: name the daemon's config ({INSTALLED_CONFIG},"
            " which `sudo kiosk-admin` uses)"
        )
    if cfg.thermometer.driver.type == "fake":
        print(
            "kiosk calibrate: the emulated sensor (no --config or $KIOSK_CONFIG names the"
            " MLX90614): nothing real is read or written",
            file=sys.stderr,
        )
    thermometer = build_thermometer(cfg.thermometer, system_clock())
    if not isinstance(thermometer, Mlx90614):
        raise UsageError("the configured thermometer has no emissivity setting")
    try:
        before = thermometer.read_emissivity()
        if args.set is None:
            print(f"emissivity {before:.4f}")
            return 0
        after = thermometer.write_emissivity(args.set)
    except DeviceFault as exc:
        raise CliError(f"thermometer: {exc}") from None
    finally:
        thermometer.close()
    print(f"emissivity {before:.4f} -> {after:.4f}; power-cycle the sensor before use")
    return 0
