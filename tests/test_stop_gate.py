"""The gate at a stop (``Daemon.stop``, ``EngineRunner.lock_for_stop``, ``kiosk run``'s end).

No sleeps: whatever is stuck waits on a ``threading.Event`` set only at the end; a test that
would hang instead fails after ``WAIT_S``."""

from __future__ import annotations

import argparse
import logging
import threading

import pytest

from checkpoint import standby as standing
from checkpoint.cli import daemon_cmd
from drivers import gate as gate_drivers
from drivers.clocksync import system_clock
from kiosk.config import parse_config

WAIT_S = 10.0  # an upper bound for a test to fail instead of hanging, never a sleep


class _StuckClose(gate_drivers.FakeGate):
    """A relay whose close never returns until ``release`` is set (stuck in its driver)."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__(system_clock())
        self.release_close = release
        self.closing = threading.Event()

    def close(self) -> None:
        self.closing.set()
        self.release_close.wait(30)


@pytest.mark.parametrize("start", ["stood by until a stop", "failed"])
def test_kiosk_runs_end_closes_a_stuck_relay_within_its_deadline_and_says_so(
    tmp_path, monkeypatch, caplog, start
):
    """``kiosk run`` closed the relay with a bare ``gate.close()`` when its start failed or
    its standby ended (before the exit timer is armed): a relay stuck in its driver held the
    exit for ever, past systemd's TimeoutStopSec. It is bounded as ``--lock-gate`` and the
    stop bound theirs, and the journal says the relay did not close in time."""
    release = threading.Event()
    relay = _StuckClose(release)
    monkeypatch.setattr(gate_drivers, "build_gate", lambda cfg, clock: relay)

    async def core_or_standby(*args, **kwargs):
        if start == "failed":
            raise RuntimeError("a start that failed")
        return None  # a stop asked while standing by

    monkeypatch.setattr(standing, "core_or_standby", core_or_standby)
    config = parse_config({"site": {"kiosk_id": "gate-1"}, "web": {"port": 0}})
    outcome: list[object] = []

    def run() -> None:
        lock = daemon_cmd.DataDirLock(tmp_path)
        try:
            outcome.append(daemon_cmd._run(argparse.Namespace(), config, lock))
        except Exception as exc:  # noqa: BLE001 - the failure is what is checked
            outcome.append(exc)
        finally:
            lock.close()

    running = threading.Thread(target=run, daemon=True)
    try:
        with caplog.at_level(logging.WARNING):
            running.start()
            running.join(WAIT_S)
            assert not running.is_alive(), "kiosk run's end waited on the relay's close"
    finally:
        release.set()
    assert relay.closing.is_set()
    if start == "failed":
        assert isinstance(outcome[0], RuntimeError)
    else:
        assert outcome == [0]
    said = [r.getMessage() for r in caplog.records if "did not close" in r.getMessage()]
    assert said and "gate" in said[0] and "left to the process's exit" in said[0], said
