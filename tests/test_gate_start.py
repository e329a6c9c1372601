"""The gate at the daemon's start: the relay is commanded locked before anything else.

A USB relay board keeps its coil as last commanded, and a Raspberry Pi kernel keeps a
released GPIO line at the level it was last driven to (``pinctrl_bcm2835.persist_gpio_outputs``,
Raspberry Pi OS's default): a daemon killed during a pass's pulse (SIGKILL, the OOM killer,
the watchdog) leaves the gate released. ``kiosk run`` commands it locked first, before it
opens the event log, and says so in the journal; a start that then stops short (another
kiosk's log: the unit stays stopped; a card that keeps the log shut: standing by "the gate
locked") no longer leaves the gate open for whoever comes."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from checkpoint import app
from checkpoint.cli import daemon_cmd
from drivers import gate as gate_drivers
from kiosk.config import parse_config
from kiosk.devices import GateFault


def _config(kiosk_id: str):
    return parse_config({"site": {"kiosk_id": kiosk_id}, "web": {"port": 0}})


@pytest.fixture
def seen(monkeypatch):
    """What reached the relay and the card, in order: ("gate", open_) and ("log",)."""
    order: list[tuple[object, ...]] = []
    command = gate_drivers.FakeGate.set_open

    def set_open(self, open_):
        order.append(("gate", open_))
        command(self, open_)

    def open_event_log(config, data_dir, clock, on_migrating=None):
        order.append(("log",))
        raise app.ForeignLog("store_fault", "kiosk.db is the event log of kiosk 'gate-1'")

    monkeypatch.setattr(gate_drivers.FakeGate, "set_open", set_open)
    monkeypatch.setattr(app, "_open_event_log", open_event_log)
    return order


def _run(config, data: Path) -> None:
    args = argparse.Namespace(config=Path("kiosk.toml"))
    lock = daemon_cmd.DataDirLock(data)
    try:
        daemon_cmd._run(args, config, lock)
    finally:
        lock.close()


def test_a_start_that_stops_short_has_locked_the_gate_first_and_says_so(tmp_path, seen, caplog):
    """The daemon was killed mid-pulse, and the start that follows finds another kiosk's log
    (a wrong backup put back): it exits 2 and the unit stays stopped. Before, the relay was
    only commanded by the engine's start, after the log had opened: never, here, and a USB
    board or a persisted GPIO line held the gate released for as long as it stayed so."""
    with caplog.at_level(logging.INFO), pytest.raises(daemon_cmd.UsageError, match="gate-1"):
        _run(_config("gate-2"), tmp_path)
    assert seen[0] == ("gate", False)  # before the log was touched
    assert seen[1:] == [("log",)]
    said = [r.getMessage() for r in caplog.records if r.name == "drivers.gate"]
    assert any("commanded locked at start" in line for line in said), said


def test_a_relay_that_does_not_answer_at_start_is_an_error_in_the_log_and_the_start_goes_on(
    tmp_path, monkeypatch, caplog
):
    """A board unplugged while the daemon was down: the lock cannot be commanded; the journal
    says the gate's state is unknown, and the start goes on (the engine keeps trying and
    the guard sees the fault), rather than ending with no screen telling anyone."""

    def refuse(self, open_):
        raise GateFault("fake gate unplugged")

    monkeypatch.setattr(gate_drivers.FakeGate, "set_open", refuse)
    relay = gate_drivers.FakeGate.__new__(gate_drivers.FakeGate)
    relay.name = "fake_gate"
    with caplog.at_level(logging.INFO, logger="drivers.gate"):
        assert gate_drivers.lock_at_start(relay, 0.5) is False
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and "state is unknown" in errors[0] and "unplugged" in errors[0]
