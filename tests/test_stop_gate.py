"""The gate at a stop (``Daemon.stop``, ``EngineRunner.lock_for_stop``, ``kiosk run``'s end).

No sleeps: whatever is stuck waits on a ``threading.Event`` set only at the end; a test that
would hang instead fails after ``WAIT_S``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from guard_support import console_fixtures

from checkpoint import standby as standing
from checkpoint.app import Daemon
from checkpoint.cli import daemon_cmd
from checkpoint.notify import Notifier
from drivers import gate as gate_drivers
from drivers.clocksync import system_clock
from kiosk.config import KioskConfig, parse_config

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


@pytest.mark.slow
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
    running = kiosk_run_thread(tmp_path, config, outcome)
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


def kiosk_run_thread(data: Path, config: KioskConfig, outcome: list[object]) -> threading.Thread:
    """A thread (not started) running ``kiosk run``'s body on ``data`` with ``config``, holding
    the data dir's lock; what it returns or raises is appended to ``outcome``."""

    def run() -> None:
        lock = daemon_cmd.DataDirLock(data)
        try:
            outcome.append(daemon_cmd._run(argparse.Namespace(), config, lock))
        except Exception as exc:  # noqa: BLE001 - the failure is what is checked
            outcome.append(exc)
        finally:
            lock.close()

    return threading.Thread(target=run, daemon=True)


START = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
clock, core, app, alice, admin = console_fixtures(START)


def _stop_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopping:")]


def test_a_sigterm_during_a_start_longer_than_the_budget_blames_the_start_the_gate_locked(
    app, core, caplog
):
    """A start that took longer than the stop's whole budget (a log opening on a slow card):
    every step's grant was 0, the relay's lock given no time at all, and the journal line
    blamed "gate lock" for using up the budget the start had used. The line names the start
    and the time it took, and the gate is commanded locked all the same."""
    daemon = Daemon(core, notifier=Notifier(None))
    daemon.guard = app.state.guard
    gate = core.devices.gate
    late_s = daemon.stop_budget_s + 1.0
    budgets = []
    made = daemon.stop_budget

    def stop_budget():
        budgets.append(made())
        return budgets[-1]

    daemon.stop_budget = stop_budget

    async def run() -> None:
        await core.runner.start()
        await asyncio.to_thread(gate.set_open, True)  # a pass's pulse under way
        daemon.stop_asked_at = asyncio.get_running_loop().time() - late_s
        await daemon.stop()

    with caplog.at_level(logging.WARNING):
        asyncio.run(run())
    assert gate.is_open is False and gate.commands[-1].open_ is False
    assert "could not be locked at stop" not in caplog.text
    # The relay's lock had one command's deadline all the same (a fake relay answers at once:
    # the grant itself is what tells).
    [(_, _, granted)] = [step for step in budgets[0].steps if step[0] == "gate lock"]
    assert granted >= core.config.engine.device_deadline_ms / 1000
    [line] = _stop_lines(caplog)
    assert "the budget used up by the start (11.0 s)" in line, line
    assert "used up by gate lock" not in line
    assert "the storage did not answer" not in line  # it was never given the time to


def test_the_screen_shows_a_pass_the_stop_kept_the_gate_locked_for_as_what_it_is():
    """The engine's deny for ``stopping`` is shown as a deny saying so, and a guard's pass the
    stop kept the gate locked for (state prompt ``stopping``) as the kiosk out of service,
    saying it is stopping: never the pass, never a scan prompt."""
    from ui.views import kiosk_view

    state = {"type": "state", "state": "decided", "prompt": "deny", "passage": 1}
    deny = {"type": "decision", "passage": 1, "decision": "deny", "reasons": ["stopping"]}
    view = kiosk_view(state, deny, "en")
    assert view["look"] == "deny" and view["sound"] != "pass"
    assert view["result"]["reasons"] == ["The checkpoint is stopping: the gate did not open"]
    held = {"type": "state", "state": "decided", "prompt": "stopping", "passage": 2}
    manual = {"type": "decision", "passage": 2, "decision": "manual_pass", "reasons": []}
    view = kiosk_view(held, manual, "zh-CN")
    assert view["phase"] == "out_of_order" and view["look"] == "out_of_service"
    assert "正在停止" in view["prompt"] and view["result"] is None


@pytest.mark.parametrize("answered_in", ["json", "html"])
def test_a_guards_decision_sent_once_the_stop_has_locked_the_gate_is_told_503_at_once(
    alice, core, answered_in
):
    """A guard's decision typed between the stop's lock and the web server's end was taken
    up by an engine that no longer opens the gate (or waited on a storage the stop was
    closing, until the server's end dropped the connection). It is answered at once: 503,
    ``Retry-After``, the checkpoint is stopping, in the form the route answers in; nothing
    is decided, nothing written."""
    import math

    from kiosk.deadline import StopBudget

    alice.portal.call(core.runner.start)
    alice.portal.call(core.runner.lock_for_stop, StopBudget(math.inf))
    events, audits = core.store.last_seq, core.store.last_audit_seq
    headers = {"Origin": "http://kiosk.test"}
    if answered_in == "json":
        headers["Accept"] = "application/json"
    form = {"csrf": alice.csrf, "decision": "pass", "subject": "none", "reason": "neighbour",
            "direction": "in"}  # fmt: skip
    answer = alice.post("/guard/manual", data=form, headers=headers, follow_redirects=False)
    alice.portal.call(core.runner.finish_stop, StopBudget(math.inf))
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) > 0
    if answered_in == "json":
        assert answer.json()["ok"] is False
        said = answer.json()["error"]
    else:
        assert answer.headers["content-type"].startswith("text/html")
        said = answer.text
    assert "stopping" in said or "正在停止" in said
    assert "Traceback" not in said
    assert core.store.last_seq == events and core.store.last_audit_seq == audits
    assert [c.open_ for c in core.devices.gate.commands if c.open_] == []


EGRESS = {"wiring": "normally_open", "fail_mode": "fail_safe"}  # a maglock on NO


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_screen_of_a_stop_that_releases_the_gate_never_says_it_stays_locked(lang):
    """For the wirings a stop releases (``released_when_stopped``: a maglock on NO, a strike
    on NC) the stopping screen said "the gate stays locked: please see the guard" while the
    stop released it. The words follow the configured wiring; elsewhere they are unchanged."""
    from kiosk.config.gate import GateSection, stop_releases
    from ui.views import kiosk_view

    held = {"type": "state", "state": "decided", "prompt": "stopping", "passage": 2}
    manual = {"type": "decision", "passage": 2, "decision": "manual_pass", "reasons": []}
    assert stop_releases(GateSection.model_validate(EGRESS))
    assert not stop_releases(GateSection.model_validate({}))
    assert not stop_releases(GateSection.model_validate({**EGRESS, "driver": {"type": "none"}}))
    released = kiosk_view(held, manual, lang, stop_releases=True)["prompt"]
    locked = kiosk_view(held, manual, lang)["prompt"]
    assert released != locked and view_stopping(locked) and view_stopping(released)
    assert ("locked" in locked or "锁闭" in locked) and not (
        "locked" in released or "锁闭" in released
    )
    assert "released" in released or "放开" in released


def view_stopping(text: str) -> bool:
    return "stopping" in text or "正在停止" in text
