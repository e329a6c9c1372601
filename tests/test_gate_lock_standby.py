"""The standby's words about the gate are what is true of it.

``kiosk run`` commands the relay locked before it opens the event log
(``drivers.gate.lock_at_start``); a card that then keeps the log shut stands the daemon by
(``checkpoint.standby``). The unit's status and the journal said "the gate locked" even when
the relay had refused that command (a board unplugged, a GPIO line another program holds),
so ``systemctl status kiosk`` told the engineer at the gate a released strike was locked."""

from __future__ import annotations

import argparse
import logging
import sqlite3

import pytest

from checkpoint import standby as standing
from checkpoint.app import build_core
from checkpoint.cli import daemon_cmd
from drivers import gate as gate_drivers
from kiosk import store as kiosk_store
from kiosk.config import parse_config
from kiosk.devices import GateFault


def _config():
    return parse_config({"site": {"kiosk_id": "gate-1"}, "web": {"port": 0}})


@pytest.fixture
def standing_by(tmp_path, monkeypatch):
    """``kiosk run`` on a card whose log reads back an I/O error: the unit's status lines
    while it stands by (one look, then a stop asked)."""
    build_core(_config(), tmp_path).close()
    fault = sqlite3.OperationalError("disk I/O error")
    fault.sqlite_errorname = "SQLITE_IOERR_READ"

    def open_connection(path, timeout_s):
        raise fault

    monkeypatch.setattr(kiosk_store, "_open_connection", open_connection)
    statuses: list[str] = []
    looks = {"left": 1}

    def pause_until(stopping):
        async def pause(server, _delay):
            statuses.append(server.status())
            looks["left"] -= 1
            if looks["left"] <= 0:
                stopping.set()  # systemctl stop while standing by

        return pause

    monkeypatch.setattr(standing, "_pause_until", pause_until)

    def run(pauses: int = 1, config=None) -> list[str]:
        looks["left"] = pauses
        lock = daemon_cmd.DataDirLock(tmp_path)
        try:
            assert daemon_cmd._run(argparse.Namespace(), config or _config(), lock) == 0
        finally:
            lock.close()
        return statuses

    return run


def _standby_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "checkpoint.standby"]


def test_a_relay_that_refused_the_lock_is_not_said_locked_while_standing_by(
    standing_by, monkeypatch, caplog
):
    """The relay refused the lock at start (its error is in the journal), then the card kept
    the log shut: the status and the standby's line said "the gate locked" all the same."""

    def refuse(self, open_):
        raise GateFault("fake gate unplugged")

    monkeypatch.setattr(gate_drivers.FakeGate, "set_open", refuse)
    with caplog.at_level(logging.INFO):
        (status,) = standing_by()
    assert "the gate locked" not in status
    assert "gate state unknown" in status and "could not be commanded locked" in status
    assert "SQLITE_IOERR_READ" in status  # the reason still said
    [line] = _standby_lines(caplog)[:1]
    assert "the gate locked" not in line and "gate state unknown" in line


def test_a_relay_that_obeyed_the_lock_is_said_locked_while_standing_by(standing_by, caplog):
    with caplog.at_level(logging.INFO):
        (status,) = standing_by()
    assert status.startswith("standing by, not deciding, the gate locked: store_fault")
    assert "the gate locked" in _standby_lines(caplog)[0]


def test_a_relay_that_answers_again_while_standing_by_is_commanded_locked_then(
    standing_by, monkeypatch
):
    """The relay refused the lock at start (a board still enumerating, unplugged a moment)
    and the card kept the log shut: nothing commanded it again for as long as the standby
    lasted (the engine that "keeps commanding it locked" never started), a strike possibly
    released for hours. Each try of the log tries the lock again until it obeys, and the
    status says so."""
    answers = {"plugged": False}
    commands: list[bool] = []

    def set_open(self, open_):
        if not answers["plugged"]:
            answers["plugged"] = True  # back by the next try
            raise GateFault("fake gate unplugged")
        commands.append(open_)

    monkeypatch.setattr(gate_drivers.FakeGate, "set_open", set_open)
    first, second, third = standing_by(pauses=3)
    assert "gate state unknown" in first
    assert commands == [False]  # locked once it answered, and only once
    assert "the gate locked" in second and "the gate locked" in third


def _egress_config():
    gate = {"wiring": "normally_open", "fail_mode": "fail_safe"}  # a maglock on NO
    return parse_config({"site": {"kiosk_id": "gate-1"}, "web": {"port": 0}, "gate": gate})


@pytest.mark.parametrize("egress", [False, True])
def test_a_kiosk_standing_by_leaves_the_coil_off_as_a_stopped_one(
    standing_by, monkeypatch, caplog, egress
):
    """No kiosk deciding, the coil off: a stopped kiosk leaves the gate so, and so does one
    standing by on a failing card, which decides nothing. For a maglock on NO (a wiring a stop
    releases) the standby held it locked, the coil energised, for as long as the card failed;
    it is commanded released once the daemon stands by, the status and the journal say so.
    Every other wiring stays locked, which is the coil off too."""
    commands: list[bool] = []
    command = gate_drivers.FakeGate.set_open

    def set_open(self, open_):
        commands.append(open_)
        command(self, open_)

    monkeypatch.setattr(gate_drivers.FakeGate, "set_open", set_open)
    with caplog.at_level(logging.INFO):
        (status,) = standing_by(config=_egress_config() if egress else None)
    line = _standby_lines(caplog)[0]
    if egress:
        assert commands == [False, True]  # locked first (the start), released standing by
        assert status.startswith("standing by, not deciding, the gate released")
        assert "the gate released" in line and "the gate locked" not in line
    else:
        assert commands == [False]
        assert status.startswith("standing by, not deciding, the gate locked")


def test_a_relay_that_refuses_the_release_while_standing_by_is_tried_again(
    standing_by, monkeypatch
):
    answers = {"refused": 2}
    commands: list[bool] = []

    def set_open(self, open_):
        if open_ and answers["refused"]:
            answers["refused"] -= 1
            raise GateFault("fake gate unplugged")
        commands.append(open_)

    monkeypatch.setattr(gate_drivers.FakeGate, "set_open", set_open)
    first, second, third = standing_by(pauses=3, config=_egress_config())
    assert "gate state unknown" in first and "could not be commanded released" in first
    assert "gate state unknown" in second
    assert commands == [False, True]  # released once it answered, and only once
    assert "the gate released" in third
