"""``Devices.close``, the one order every caller closes the devices in (``Core.close``: the
demo, replay, the bench, the CLI verbs; the daemon's stop: ``Devices.close_outputs``).

Before: the readers were stopped first, then the relay closed: a reader stuck in its driver
kept the relay open (not let go of at its locked level, a USB board's port held) for as long
as it was stuck, for every caller but the daemon, which had an order of its own. Now the relay
is closed first, then the thermometer, each bounded, then the readers.

No sleeps: what is stuck waits on a ``threading.Event`` set only at the end."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

from kiosk.core import Devices
from kiosk.devices import Health

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 10.0  # an upper bound for a test to fail instead of hanging, never a sleep


class Part:
    """A device whose ``close`` (or ``stop``) is recorded, and stuck until ``release``."""

    def __init__(self, name: str, seen: list[str], stuck: threading.Event | None = None) -> None:
        self.name, self.seen, self.stuck = name, seen, stuck
        self.done = threading.Event()

    def _end(self) -> None:
        self.seen.append(self.name)
        if self.stuck is not None:
            self.stuck.wait(WAIT_S)
        self.done.set()

    close = stop = _end

    def start(self, sink) -> None:
        pass

    def health(self) -> Health:
        return Health("ok", "")


def test_a_reader_stuck_in_its_driver_does_not_keep_the_relay_open():
    seen: list[str] = []
    release = threading.Event()
    gate, thermometer = Part("gate", seen), Part("thermometer", seen)
    reader = Part("reader", seen, stuck=release)
    devices = Devices(thermometer=thermometer, readers=[reader], gate=gate)  # type: ignore[arg-type]
    closing = threading.Thread(target=devices.close, daemon=True)
    try:
        closing.start()
        assert gate.done.wait(WAIT_S)  # closed while the reader is still stuck
        assert thermometer.done.wait(WAIT_S)
        assert seen[:2] == ["gate", "thermometer"]
    finally:
        release.set()
    closing.join(WAIT_S)
    assert seen == ["gate", "thermometer", "reader"]


def test_a_relay_whose_close_hangs_is_left_to_the_exit_and_the_rest_still_closes(caplog):
    seen: list[str] = []
    release = threading.Event()
    gate = Part("gate", seen, stuck=release)
    thermometer, reader = Part("thermometer", seen), Part("reader", seen)
    devices = Devices(thermometer=thermometer, readers=[reader], gate=gate)  # type: ignore[arg-type]
    try:
        devices.close(timeout_s=0.01)
        assert seen == ["gate", "thermometer", "reader"]
        assert not gate.done.is_set()  # still stuck, in a daemon thread of its own
        [line] = [r.getMessage() for r in caplog.records if r.name == "kiosk.deadline"]
        assert "the gate did not close within 0.0 s" in line
    finally:
        release.set()


def test_every_command_closes_its_core_by_core_close_the_relay_before_the_log():
    """The bench's edge and pull servers closed the event log before the devices
    (``core.store.close()`` then ``core.devices.close()``): a card stalled in the log's close
    kept the relay open. Every command closes a core by ``Core.close`` (the relay first, the
    log last); only the daemon closes the log itself, last of its stop (``_close_log``)."""
    found = []
    for path in sorted((ROOT / "checkpoint").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            if (
                node.func.attr == "close"
                and isinstance(owner, ast.Attribute)
                and owner.attr in ("store", "devices")
            ):
                found.append(f"{path.relative_to(ROOT)}: {ast.unparse(node)}")
    assert found == ["checkpoint/app.py: self.core.store.close()"]
