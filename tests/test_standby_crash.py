"""A start of ``kiosk run`` that fails before it has read the history's look-back, for a
reason that is not the card's (a row the history cannot decode, a bug): its crash stays on
record, so a crash loop of systemd's restarts is still a restart per start in the daily
report. And the standby's bounds with systemd: a start tried while standing by that stalls
is ended by the watchdog, and a standby that ends in a stop says ``STOPPING=1``."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from test_standby_retries import WAIT_S, _config, _stand_by_told, _Told
from test_start_card_full import _full, _starts
from test_stop_gate import kiosk_run_thread

from checkpoint import standby as standing
from checkpoint.app import build_core, record_start
from kiosk import stats
from kiosk.runner import EngineRunner


def _a_crashed_run_before(data) -> None:
    """A run of the daemon on ``data`` that started and then crashed: no stop row, no marker."""
    data.mkdir(exist_ok=True)
    core = build_core(_config(), data)
    try:
        record_start(core)
    finally:
        core.close()


def _undecodable_history(monkeypatch, *, full_first: bool = False) -> None:
    """Each start's look-back fails on a row the history cannot decode (not the card's
    fault); ``full_first``: the first start of each run meets a full card first, stands by,
    and the start it tries again fails so."""
    tries: list[int] = []

    def load_history(_runner: EngineRunner) -> int:
        tries.append(1)
        if full_first and len(tries) % 2 == 1:
            raise _full()
        raise ValueError("a row the history cannot decode")

    monkeypatch.setattr(EngineRunner, "_load_history", load_history)


def _run_failing(data) -> object:
    """``kiosk run`` on ``data``: what it returned or raised."""
    outcome: list[object] = []
    running = kiosk_run_thread(data, _config(), outcome)
    running.start()
    running.join(WAIT_S)
    assert not running.is_alive()
    return outcome[0]


def _restart_kinds(data) -> list[str]:
    """The daily report's restarts (``kiosk.stats.daemon_restarts``) of the log in ``data``."""
    conn = sqlite3.connect(data / "kiosk.db")
    conn.row_factory = sqlite3.Row
    try:
        rows = [
            dict(row)
            for row in conn.execute(
                "SELECT seq, ts, boot_id, action FROM audit"
                " WHERE action IN ('daemon.start', 'daemon.stop') ORDER BY seq"
            )
        ]
    finally:
        conn.close()
    now = datetime.now(UTC)
    day = (now - timedelta(days=1), now + timedelta(days=1))
    return [kind for *_, kind in stats.daemon_restarts(rows, [], day)]


@pytest.mark.slow
@pytest.mark.parametrize("full_first", [False, True])
def test_a_crash_loop_before_the_look_back_stays_on_record(tmp_path, monkeypatch, full_first):
    """The run before crashed; the next start failed before reading the look-back, twice
    (systemd restarting it), then one ran. The failed starts wrote no ``daemon.start`` row
    while their stop wrote ``daemon.stop`` and its marker: the crash before them read as a
    clean stop, and the crash loop was one restart in the daily report. Each failed start
    writes its row, said ``failed``, as its stop begins (with the standby it held, if any)."""
    data = tmp_path / "data"
    _a_crashed_run_before(data)
    _undecodable_history(monkeypatch, full_first=full_first)
    _stand_by_told(monkeypatch, _Told())  # its pauses at once
    for _ in range(2):
        outcome = _run_failing(data)
        assert isinstance(outcome, ValueError), outcome
    monkeypatch.undo()
    core = build_core(_config(), data)
    try:
        record_start(core)  # systemd's restart, which runs
    finally:
        core.close()

    starts = _starts(data)
    assert [s["last_stop"] for s in starts] == ["none", "unclean", "clean", "clean"]
    assert [s.get("failed", False) for s in starts] == [False, True, True, False]
    assert [("standby" in s) for s in starts] == [False, full_first, full_first, False]
    assert _restart_kinds(data) == ["daemon_died", "daemon_stopped", "daemon_stopped"]


class _Heard(_Told):
    """A notifier that keeps what it would tell systemd, heard (the watchdog enabled)."""

    @property
    def enabled(self) -> bool:
        return True


def test_a_start_tried_while_standing_by_past_its_budget_stops_the_watchdog(monkeypatch, caplog):
    """The standby told systemd ``READY=1`` and fed the watchdog whatever happened: a start
    tried again that stalled (a stalled card's read) was bounded by nothing. The watchdog's
    pings stop once a start tried has been under way longer than ``START_BUDGET_S`` (the
    unit's ``TimeoutStartSec``), and go on while the standby only waits."""
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    now = [1000.0]
    held = standing.Held(clock=lambda: now[0])
    told = _Heard()

    async def scenario() -> list[bool]:
        async def pause(_server, _delay):
            now[0] += 500.0  # standing by long: no start under way meanwhile

        core = await standing.core_or_standby(
            lambda: "core", _config(), asyncio.Event(), notifier=told, pause=pause,
            failed=_full(), held=held,
        )  # fmt: skip
        assert core == "core" and held.server is not None  # the start tried, serving on
        watchdog = held.server._watchdog
        pinged = [watchdog.tick(watchdog.next_due_ns or 0)]
        now[0] += standing.START_BUDGET_S
        pinged.append(watchdog.tick(watchdog.next_due_ns))
        now[0] += 1.0
        pinged += [watchdog.tick(watchdog.next_due_ns), watchdog.tick(watchdog.next_due_ns)]
        held.again(_full(), "full", opened=True)  # that start failed: standing by again
        pinged.append(watchdog.tick(watchdog.next_due_ns))
        await held.end()
        return pinged

    with caplog.at_level(logging.ERROR, logger="checkpoint.standby"):
        assert asyncio.run(scenario()) == [True, True, False, False, True]
    overdue = [r for r in caplog.records if "has not ended after 90 s" in r.getMessage()]
    assert len(overdue) == 1


@pytest.mark.parametrize("while_trying", [False, True])
def test_a_standby_that_ends_in_a_stop_tells_systemd_stopping(while_trying):
    """A standby that a stop ended told systemd nothing: its unit read as running until the
    process was gone. ``STOPPING=1`` is said as it ends, whether the stop came while it
    waited or while the start it tried again met the card's fault."""
    told = _Heard()
    held = standing.Held()
    stopping = asyncio.Event()

    async def scenario():
        async def pause(_server, _delay):
            if not while_trying:
                stopping.set()

        kwargs = {"notifier": told, "pause": pause, "held": held}
        core = await standing.core_or_standby(
            lambda: "core", _config(), stopping, failed=_full(), **kwargs
        )
        if while_trying:
            assert core == "core" and "STOPPING=1" not in told.sent
            stopping.set()  # asked while the start tried again ran; it met the card's fault
            core = await standing.core_or_standby(
                lambda: "core", _config(), stopping, failed=_full(), **kwargs
            )
        return core

    assert asyncio.run(scenario()) is None
    assert told.sent.count("READY=1") == 1 and told.sent.count("STOPPING=1") == 1
    assert held.server is None
