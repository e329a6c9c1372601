"""``kiosk run`` standing by for a card that stays at fault while it tries the start again
(a full card reading the history's look-back: each try opens the log, the start fails again):
one standby for the whole held period, said once, and a console that says what the gate
does."""

from __future__ import annotations

import socket

import httpx
import pytest
from fastapi.testclient import TestClient
from test_start_card_full import _a_clean_run_before, _failing_starts, _full, _last_stops, _starts
from test_stop_gate import kiosk_run_thread

from checkpoint import standby as standing
from checkpoint.app import build_core, record_start
from checkpoint.notify import Notifier
from kiosk.config import parse_config
from kiosk.runner import EngineRunner
from kiosk.standby import Standby

WAIT_S = 60


class _Told(Notifier):
    """A notifier that keeps what it would tell systemd."""

    def __init__(self) -> None:
        super().__init__(None)
        self.sent: list[str] = []

    def send(self, *assignments: str) -> bool:
        self.sent += assignments
        return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(port: int = 0):
    return parse_config(
        {
            "site": {"kiosk_id": "gate-1"},
            "web": {"port": port},
            "policy": {"mode": "temperature_only"},
        }
    )


def _stand_by_told(monkeypatch, told: _Told, *, stop_at: int | None = None) -> list[object]:
    """``kiosk run``'s standby told through ``told``, its pauses at once; the servers each
    pause saw. ``stop_at``: a stop asked at that pause (else none)."""
    real = standing.core_or_standby
    servers: list[object] = []

    async def core_or_standby(build, config, stopping, **kwargs):
        async def pause(server, _delay):
            servers.append(server)
            if stop_at is not None and len(servers) >= stop_at:
                stopping.set()

        core = await real(build, config, stopping, notifier=told, pause=pause, **kwargs)
        if core is not None and stop_at is None and len(servers) == 3:
            stopping.set()  # the fourth start runs: the test's stop once it has
        return core

    monkeypatch.setattr(standing, "core_or_standby", core_or_standby)
    return servers


def _run(data, config) -> None:
    outcome: list[object] = []
    running = kiosk_run_thread(data, config, outcome)
    running.start()
    running.join(WAIT_S)
    assert not running.is_alive()
    assert outcome == [0], outcome


@pytest.mark.slow
def test_one_standby_server_serves_the_whole_held_period_and_says_ready_once(tmp_path, monkeypatch):
    """Each start tried again stopped the standby server and stood up a new one, which told
    systemd ``READY=1`` again, and the guard's standby page refused connections while the
    start was tried. One server now serves until the start that runs has read the log, then
    the daemon's own takes the port."""
    port = _free_port()
    loads = _failing_starts(monkeypatch, failures=3)
    answers: list[object] = []
    load = EngineRunner._load_history

    def load_history(runner: EngineRunner) -> int:  # in a thread: the loop serves meanwhile
        if loads:  # a start tried again: the standby's page, while it reads the look-back
            try:
                answers.append(httpx.get(f"http://127.0.0.1:{port}/guard", timeout=5).status_code)
            except httpx.TransportError as exc:
                answers.append(type(exc).__name__)
        return load(runner)

    monkeypatch.setattr(EngineRunner, "_load_history", load_history)
    told = _Told()
    servers = _stand_by_told(monkeypatch, told)

    _run(tmp_path, _config(port))

    assert len(loads) == 4  # three starts failed, the fourth ran
    assert answers == [503, 503, 503]  # the standby's page, while each start was tried
    assert len(servers) == 3 and len({id(s) for s in servers}) == 1
    assert [m for m in told.sent if m == "READY=1"] == ["READY=1"]


@pytest.mark.slow
def test_the_start_that_runs_after_standing_by_writes_one_row_saying_the_standby(
    tmp_path, monkeypatch
):
    """Each start tried again wrote a ``daemon.start`` row (or tried to, on a full card): a
    card full for an hour, a row a minute, each read by the daily report as a restart. The
    start that runs writes the one row, how the run before ended and the standby held before
    it (its kind, since when, its failed tries)."""
    _a_clean_run_before(tmp_path)
    _failing_starts(monkeypatch, failures=3)
    _stand_by_told(monkeypatch, _Told())

    _run(tmp_path, _config())

    before, started = _starts(tmp_path)
    assert before == {"last_stop": "none"}
    assert started["last_stop"] == "clean"
    assert started["standby"]["kind"] == "full" and started["standby"]["tries"] == 3
    assert started["standby"]["since"].endswith("Z")


@pytest.mark.slow
def test_a_stop_while_standing_by_after_a_crash_leaves_the_crash_said(tmp_path, monkeypatch):
    """The run before crashed (no marker); the start stood by for the card and a stop ended
    the standby: the next start says how the run before the standby ended (``unclean``), as
    for a standby whose log never opened; no row of the start that never ran stands in."""
    data = tmp_path / "data"
    data.mkdir()
    core = build_core(_config(), data)
    try:
        record_start(core)  # a run that then crashed: no clean stop, no marker
    finally:
        core.close()
    _failing_starts(monkeypatch, failures=1)
    _stand_by_told(monkeypatch, _Told(), stop_at=1)

    _run(data, _config())

    core = build_core(_config(), data)
    try:
        record_start(core)
    finally:
        core.close()
    assert _last_stops(data) == ["none", "unclean"]


@pytest.mark.parametrize(
    ("obeyed", "released", "en", "zh"),
    [
        (True, True, "the gate is released", "闸门已放开"),
        (False, True, "the gate's state is unknown", "闸门状态未知"),
        (False, False, "the gate's state is unknown", "闸门状态未知"),
        (True, False, "the gate stays locked", "闸门保持锁闭"),
    ],
)
def test_the_standby_console_says_what_the_gate_does(obeyed, released, en, zh):
    """The console's title said "the gate stays locked" where the wiring released it
    (``gate.fail_safe``, ``release_at_stop``: the coil off while the kiosk stands by) or the
    relay did not obey, while the unit's status said otherwise. It says what the status says."""
    standby = Standby(str(_full()), "full", "2026-12-07T21:00:00Z", opened=True)
    server = standing.StandbyServer(
        _config(), standby, Notifier(None), gate_obeyed=obeyed, gate_released=released
    )
    page = TestClient(server.app, client=("192.168.1.77", 40000)).get("/guard")
    assert page.status_code == 503
    text = page.text.replace("&#x27;", "'")
    title = text.split("<title>", 1)[1].split("</title>", 1)[0]  # the first language's
    assert zh in title and f"it decides nothing and {en}" in text
    if released or not obeyed:
        assert "stays locked" not in page.text and "保持锁闭" not in page.text
    if released and obeyed:
        assert "open the gate with its manual release" not in page.text


def test_the_console_follows_the_relay_once_it_obeys():
    """The relay refused the lock at start; once a try of the log commands it locked and it
    obeys (``_relock``), the status says so, and so does the console."""
    standby = Standby("database or disk is full", "full", "2026-12-07T21:00:00Z")
    server = standing.StandbyServer(_config(), standby, Notifier(None), gate_obeyed=False)
    web = TestClient(server.app)
    assert "the gate's state is unknown" in web.get("/guard").text.replace("&#x27;", "'")
    server.gate_obeyed = True
    assert "the gate stays locked" in web.get("/guard").text
