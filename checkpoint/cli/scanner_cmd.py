"""``kiosk scanner setup PORT``: put a GM65 scanner module in the mode the kiosk reads.

Serial output (TTL UART, or USB virtual serial/CDC), a CR after each code, and continuous or
command-triggered scanning; every zone is read back, then saved to the module's flash. One
line per setting on stdout; no reply or a wrong one is one line on stderr and exit 1.
A module in USB keyboard mode (the USB factory default) has no serial port yet: scan the
printed setup codes in docs/wiring.md first.
"""

from __future__ import annotations

import argparse
from typing import Literal

from .errors import CliError, UsageError
from .parsers import Verbs, add_group, add_verb, path_arg


def register(sub: Verbs) -> None:
    add_group(sub, "scanner", _actions)


def _actions(actions: Verbs) -> None:
    """set up a GM65 serial QR scanner module (output, CR suffix, scan mode)

    Serial commands to a GM65-class scanner module. See docs/wiring.md."""
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


def run_setup(args: argparse.Namespace) -> int:
    """serial/CDC output, CR after each code, continuous or command mode; saved

    Reads, sets and reads back the module's zones: output interface (0x000D), tail
    (0x0060: CR) and scan mode (0x0000), then saves them to the module's flash. Exit 1 when
    the module does not acknowledge."""
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
