"""``kiosk scanner setup PORT``: put a GM65 scanner module in the mode the kiosk reads.
``kiosk scanner list`` / ``read NODE``: find a scanner in USB keyboard mode and see what the
kiosk reads from it (``readers.sources`` ``type = "hid"``, docs/readers.md).

Serial output (TTL UART, or USB virtual serial/CDC), a CR after each code, and continuous or
command-triggered scanning; every zone is read back, then saved to the module's flash. One
line per setting on stdout; no reply or a wrong one is one line on stderr and exit 1.
A module in USB keyboard mode (the USB factory default) has no serial port yet: scan the
printed setup codes in docs/wiring.md first.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .errors import CliError, UsageError
from .parsers import Verbs, add_group, add_verb, path_arg

if TYPE_CHECKING:
    from drivers.codes import Rejection
    from drivers.hid_scanner import HidScanner
    from kiosk.devices import CodeRead


BY_ID = "/dev/input/by-id"


def register(sub: Verbs) -> None:
    add_group(sub, "scanner", _actions)


def _actions(actions: Verbs) -> None:
    """set up a GM65 serial QR scanner module; find and test-read a keyboard-mode scanner

    Serial commands to a GM65-class scanner module; the input nodes of scanners in USB
    keyboard mode. See docs/wiring.md and docs/readers.md.

    Examples:
      sudo kiosk-admin scanner setup /dev/ttyACM0 --mode continuous
      kiosk scanner list"""
    setup = add_verb(actions, "setup", run_setup)
    setup.add_argument(
        "port", metavar="PORT", type=path_arg, help="serial device, e.g. /dev/ttyACM0 or /dev/ttyS0"
    )
    setup.add_argument(
        "--output",
        choices=("serial", "cdc"),
        help="cdc: USB virtual serial (/dev/ttyACM*); serial: the TTL UART pins (default: cdc"
        " for a ttyACM port, serial otherwise)",
    )
    setup.add_argument(
        "--mode",
        choices=("continuous", "command"),
        default="continuous",
        help="continuous: scan whenever a code is in view (default); command: only when the"
        " kiosk sends the trigger (readers.sources trigger_hex)",
    )
    setup.add_argument("--baudrate", type=int, default=9600, help="the module's rate (9600)")
    setup.add_argument(
        "--no-save", action="store_true", help="do not save to flash (lost at power-off)"
    )
    setup.add_argument(
        "--timeout", type=float, default=1.0, help="seconds to wait for each reply (1.0)"
    )
    listing = add_verb(actions, "list", run_list)
    listing.add_argument(
        "--by-id",
        metavar="DIR",
        type=path_arg,
        default=BY_ID,
        help=f"the folder of stable input node names ({BY_ID})",
    )
    read = add_verb(actions, "read", run_read)
    read.add_argument(
        "node",
        metavar="NODE",
        type=path_arg,
        help="the scanner's input node, e.g. /dev/input/by-id/usb-...-event-kbd",
    )
    read.add_argument(
        "--count", metavar="N", type=int, default=1, help="codes to read before exiting (1)"
    )
    read.add_argument(
        "--timeout", metavar="S", type=float, default=30.0, help="seconds to wait for them (30.0)"
    )
    read.add_argument(
        "--end-key",
        metavar="KEY",
        action="append",
        choices=("enter", "kpenter", "tab"),
        help="enter, kpenter or tab: a key that ends a code (repeat for more; default: enter"
        " and kpenter)",
    )


def run_setup(args: argparse.Namespace) -> int:
    """set a GM65 module to serial output, CR after each code and a scan mode; saved in it

    Reads, sets and reads back the module's zones: output interface (0x000D), tail
    (0x0060: CR) and scan mode (0x0000), then saves them to the module's flash. Exit 1 when
    the module does not acknowledge.

    Examples:
      sudo systemctl stop kiosk           # the daemon holds the port
      sudo kiosk-admin scanner setup /dev/ttyACM0 --mode continuous
      sudo kiosk-admin scanner setup /dev/ttyS0 --output serial --baudrate 9600"""
    import serial

    from drivers.gm65 import Gm65, Gm65Error

    if not 1200 <= args.baudrate <= 921600:
        raise UsageError("--baudrate must be within 1200..921600")
    if not 0.05 <= args.timeout <= 30:
        raise UsageError("--timeout must be within 0.05..30 s")
    output: Literal["serial", "cdc"] = args.output or ("cdc" if "ttyACM" in args.port else "serial")
    try:
        port = serial.serial_for_url(
            args.port,
            baudrate=args.baudrate,
            timeout=0.05,
            write_timeout=args.timeout,
            exclusive=True,
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        if "exclusively lock" in str(exc):
            raise CliError(
                f"{args.port} is in use (the kiosk daemon reads it): sudo systemctl stop kiosk,"
                " run the setup, then sudo systemctl start kiosk"
            ) from None
        raise CliError(f"cannot open {args.port}: {exc}") from None
    try:
        changes = Gm65(port, timeout_s=args.timeout).setup(output, args.mode, save=not args.no_save)
    except Gm65Error as exc:
        raise CliError(
            f"{args.port}: {exc} (a module in USB keyboard mode, or at another baud rate,"
            " does not answer: see docs/wiring.md)"
        ) from None
    except (serial.SerialException, OSError) as exc:
        raise CliError(f"{args.port}: {exc}") from None
    finally:
        port.close()
    for change in changes:
        verb = "set" if change.before != change.after else "already"
        print(
            f"{change.name:<7} zone 0x{change.address:04X}: 0x{change.before:02X} ->"
            f" 0x{change.after:02X} ({verb})"
        )
    print(
        f"scanner on {args.port}: {output} output, CR after each code, {args.mode} mode;"
        + (" not saved (--no-save)" if args.no_save else " saved to the module's flash")
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    """find a keyboard-mode scanner: the input nodes of /dev/input/by-id/*-event-kbd

    One line per node: its stable name, the event node it points to, and whether this user
    may read it. Exit 1 when there is none (the scanner is not plugged in, or is in serial
    mode: ls /dev/serial/by-id/).

    Examples:
      kiosk scanner list"""
    folder = Path(args.by_id)
    try:
        nodes = sorted(p for p in folder.iterdir() if p.name.endswith("-event-kbd"))
    except OSError:
        nodes = []
    if not nodes:
        raise CliError(
            f"no keyboard input node in {folder}: is the scanner plugged in (lsusb)? One in"
            " serial mode is a port instead (ls /dev/serial/by-id/)"
        )
    for node in nodes:
        target = os.path.realpath(node)
        readable = os.access(target, os.R_OK)
        print(f"{node} -> {target}" + ("" if readable else " (not readable: group input?)"))
    return 0


def run_read(args: argparse.Namespace) -> int:
    """read codes from a keyboard-mode scanner, as the kiosk would; one JSON line each

    Opens NODE with the kiosk's own driver, taking it for itself (the codes are not typed
    anywhere else meanwhile), and prints each code as {"code": ...}; a line the kiosk would
    refuse is one line on stderr with its reason. Exit 0 after --count codes, 1 when the node
    cannot be read or the time runs out, 2 for bad options.

    Examples:
      sudo systemctl stop kiosk           # the daemon holds the scanner
      sudo kiosk-admin scanner read /dev/input/by-id/usb-Barcode_Scanner-event-kbd --count 3"""
    from drivers import hid_scanner
    from drivers.clocksync import system_clock
    from kiosk.backoff import Backoff

    if not 1 <= args.count <= 1000:
        raise UsageError("--count must be within 1..1000")
    if not 0.5 <= args.timeout <= 3600:
        raise UsageError("--timeout must be within 0.5..3600 s")
    rejected: queue.Queue[Rejection] = queue.Queue()
    codes: queue.Queue[CodeRead] = queue.Queue()
    scanner = hid_scanner.HidScanner(
        args.node,
        system_clock(),
        name="read",
        end_keys=args.end_key or ("enter", "kpenter"),
        reconnect=Backoff(base_s=0.5, cap_s=2.0),
        grab=hid_scanner.ioctl_grab,  # looked up now: a test puts a fake's in its place
        on_rejection=rejected.put,
    )
    scanner.start(codes.put)
    try:
        return _read_codes(scanner, codes, rejected, args.count, args.timeout)
    finally:
        scanner.stop()


def _read_codes(
    scanner: HidScanner,
    codes: queue.Queue[CodeRead],
    rejected: queue.Queue[Rejection],
    count: int,
    timeout_s: float,
) -> int:
    """Print codes as they come until ``count``; a node that cannot be read ends it at once."""
    deadline = time.monotonic() + timeout_s
    got = 0
    said = ""
    while got < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise CliError(f"{scanner.device}: {got} of {count} code(s) read in {timeout_s:g} s")
        health = scanner.health()
        if health.state == "fault" and health.detail.startswith(("cannot open", "cannot grab")):
            detail = health.detail.split("; retry in ")[0]
            if "another program holds it" in detail:
                detail += (
                    "; the kiosk daemon reads it while it runs: sudo systemctl stop kiosk,"
                    " read, then sudo systemctl start kiosk"
                )
            raise CliError(detail)
        if health.state != "ok" and health.detail != said and health.detail:
            print(health.detail, file=sys.stderr, flush=True)
        said = health.detail
        _say_refused(rejected)
        try:
            code = codes.get(timeout=min(0.1, left))
        except queue.Empty:
            continue
        print(json.dumps({"code": code.text}), flush=True)
        got += 1
    _say_refused(rejected)
    return 0


def _say_refused(rejected: queue.Queue[Rejection]) -> None:
    while not rejected.empty():
        print(f"refused: {rejected.get_nowait().reason}", file=sys.stderr, flush=True)
