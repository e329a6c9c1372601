"""The far side of the walkthrough VM's two emulated USB serial adapters (QEMU ``usb-serial``).

Inside the VM they are real FTDI devices (``ftdi_sio``, ``/dev/ttyUSB*``, with stable
``/dev/serial/by-id`` names); QEMU connects each one's wire to a Unix socket, and this process
is what is "plugged in" at the other end:

* ``relay``: an LCUS-1 relay board. Every 4-byte command the kiosk writes is decoded and
  appended to ``relay.log`` as ``<unix time> <open|close|bad> <hex>`` (``A0 01 01 A2`` opens
  channel 1, ``A0 01 00 A1`` closes it; anything else, or a wrong checksum, is ``bad``).
* ``scanner``: a GM65 QR module in continuous mode. Each line written to ``scan.in`` (a
  FIFO the walkthrough writes a pass into) is sent to the kiosk as the module would: the
  code's text, then CR LF.

Usage: python usb_peer.py DIR  (DIR holds relay.sock, scanner.sock, scan.in, relay.log).
Runs until killed; a socket that drops (the VM rebooting) is reconnected.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path


def _connect(path: Path) -> socket.socket:
    while True:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(path))
            return sock
        except OSError:
            sock.close()
            time.sleep(0.2)


def decode_relay(command: bytes) -> str:
    """``open``/``close`` for a well-formed LCUS-1 command, else ``bad``."""
    if len(command) != 4 or command[0] != 0xA0 or (sum(command[:3]) & 0xFF) != command[3]:
        return "bad"
    return {1: "open", 0: "close"}.get(command[2], "bad")


def relay(folder: Path) -> None:
    log = folder / "relay.log"
    while True:
        sock = _connect(folder / "relay.sock")
        buf = b""
        try:
            while True:
                data = sock.recv(64)
                if not data:
                    break
                buf += data
                while len(buf) >= 4:
                    start = buf.find(b"\xa0")
                    if start < 0:
                        buf = b""
                        break
                    buf = buf[start:]
                    if len(buf) < 4:
                        break
                    command, buf = buf[:4], buf[4:]
                    with log.open("a", encoding="ascii") as f:
                        f.write(f"{time.time():.3f} {decode_relay(command)} {command.hex(' ')}\n")
        except OSError:
            pass
        finally:
            sock.close()


def scanner(folder: Path) -> None:
    fifo = folder / "scan.in"
    holder: dict[str, socket.socket] = {}

    def keep_connected() -> None:
        while True:
            sock = _connect(folder / "scanner.sock")
            holder["sock"] = sock
            try:
                while sock.recv(64):  # a trigger command or nothing: continuous mode
                    pass
            except OSError:
                pass
            holder.pop("sock", None)
            sock.close()

    threading.Thread(target=keep_connected, daemon=True).start()
    while True:
        with fifo.open("rb") as f:  # blocks until the walkthrough opens it for writing
            for line in f:
                code = line.strip()
                sock = holder.get("sock")
                if code and sock is not None:
                    try:
                        sock.sendall(code + b"\r\n")
                    except OSError:
                        pass


def main() -> None:
    folder = Path(sys.argv[1])
    if not (folder / "scan.in").exists():
        os.mkfifo(folder / "scan.in")
    threading.Thread(target=relay, args=(folder,), daemon=True).start()
    scanner(folder)


if __name__ == "__main__":
    main()
