"""A full card met while the daemon starts, after its log opened: reading the history's
look-back (a month of passages) SQLite needed room the card did not have (``SQLITE_FULL``).
Standby covered only the log's open, so ``kiosk run`` exited 1 and systemd started it again
every 3 s for ever: no health, no guard console, though docs/operations.md says the guard can
still sign in. It stands by as for a log that does not open (gate locked, health says why,
the console up) and tries again, the start included."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sqlite3

import httpx
import pytest
from test_stop_gate import kiosk_run_thread

from checkpoint import standby as standing
from checkpoint.app import STOPPED_MARKER, build_core, record_start, record_stop
from checkpoint.cli import daemon_cmd
from checkpoint.notify import Notifier
from kiosk.config import parse_config
from kiosk.runner import EngineRunner

WAIT_S = 60


def _config():
    return parse_config(
        {
            "site": {"kiosk_id": "gate-1"},
            "web": {"port": 0},
            "policy": {"mode": "temperature_only"},
        }
    )


def _full() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorname = "SQLITE_FULL"
    return exc


@pytest.mark.slow
def test_a_full_card_at_the_daemons_start_stands_by_then_starts(tmp_path, monkeypatch):
    loads: list[str] = []
    load = EngineRunner._load_history

    def load_history(runner: EngineRunner) -> int:
        loads.append("try")
        if len(loads) == 1:
            raise _full()
        return load(runner)

    monkeypatch.setattr(EngineRunner, "_load_history", load_history)
    seen: dict[str, object] = {}
    real = standing.core_or_standby

    async def core_or_standby(build, config, stopping, **kwargs):
        async def pause(server, _delay):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as web:
                seen["health"] = await web.get("/api/v1/health")
                seen["console"] = await web.get("/guard")
            seen["status"] = server.status()

        core = await real(build, config, stopping, notifier=Notifier(None), pause=pause, **kwargs)
        seen["failed"] = kwargs.get("failed")
        if kwargs.get("failed") is not None:
            stopping.set()  # started again: the test's systemctl stop, once it has run
        return core

    monkeypatch.setattr(standing, "core_or_standby", core_or_standby)
    config = _config()
    outcome: list[object] = []
    running = kiosk_run_thread(tmp_path, config, outcome)
    running.start()
    running.join(WAIT_S)
    assert not running.is_alive()
    assert outcome == [0], outcome
    assert loads == ["try", "try"]  # stood by, then the start was tried again and ran
    assert isinstance(seen["failed"], sqlite3.OperationalError)
    health = seen["health"]
    assert isinstance(health, httpx.Response) and health.status_code == 503
    report = health.json()
    assert report["deciding"] is False and report["standby"]["kind"] == "full"
    assert "full" in report["devices"]["store"]["detail"]
    console = seen["console"]
    assert isinstance(console, httpx.Response)
    assert "the gate stays locked" in console.text and "full" in console.text
    assert "the gate locked" in str(seen["status"])


@pytest.mark.slow
def test_another_failure_at_the_start_is_raised_as_before(tmp_path, monkeypatch):
    def load_history(_runner: EngineRunner) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(EngineRunner, "_load_history", load_history)
    config = _config()
    lock = daemon_cmd.DataDirLock(tmp_path)
    try:
        with pytest.raises(RuntimeError, match="a bug"):
            daemon_cmd._run(argparse.Namespace(), config, lock)
    finally:
        lock.close()


class _Core:
    """What ``start_or_card_failure`` closes: the core but its relay."""

    def __init__(self) -> None:
        self.closed: list[str] = []

    def close_keeping_gate(self) -> None:
        self.closed.append("all but the relay")


def test_a_card_failure_of_the_start_is_handed_back_the_core_closed_but_its_relay():
    core = _Core()

    async def start() -> None:
        raise _full()

    failed = asyncio.run(standing.start_or_card_failure(start, core))
    assert isinstance(failed, sqlite3.OperationalError)
    assert core.closed == ["all but the relay"]


def test_a_start_that_works_or_fails_otherwise_is_left_as_it_was():
    core = _Core()

    async def start() -> None:
        return None

    async def broken() -> None:
        raise RuntimeError("a bug")

    assert asyncio.run(standing.start_or_card_failure(start, core)) is None
    with pytest.raises(RuntimeError, match="a bug"):
        asyncio.run(standing.start_or_card_failure(broken, core))
    assert core.closed == []


@pytest.mark.slow
def test_a_card_failure_once_serving_is_raised_not_stood_by_on_its_own_port(tmp_path, monkeypatch):
    """A full card met after the web server was up (here writing the Pi's power spells): the
    standby closed the core but left the server and its tasks running, and its own console
    then failed "port ... already in use". That failure is raised as before the standby
    (the server stopped), the standby being for the steps before serving."""
    from checkpoint.app import Daemon

    async def watch(_daemon: Daemon) -> None:
        raise _full()

    monkeypatch.setattr(Daemon, "_watch_pi_power", watch)
    stood_by: list[object] = []
    real = standing.core_or_standby

    async def core_or_standby(build, config, stopping, **kwargs):
        stood_by.append(kwargs.get("failed"))
        return await real(build, config, stopping, notifier=Notifier(None), **kwargs)

    monkeypatch.setattr(standing, "core_or_standby", core_or_standby)
    lock = daemon_cmd.DataDirLock(tmp_path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="full"):
            daemon_cmd._run(argparse.Namespace(), _config(), lock)
    finally:
        lock.close()
    assert stood_by == [None]  # the first start's, never again with the failure


def _starts(data) -> list[dict]:
    """The detail of each ``daemon.start`` row of the log in ``data``, in order."""
    conn = sqlite3.connect(data / "kiosk.db")
    try:
        rows = conn.execute("SELECT detail FROM audit WHERE action = 'daemon.start' ORDER BY seq")
        return [json.loads(detail) for (detail,) in rows]
    finally:
        conn.close()


def _last_stops(data) -> list[str]:
    """``last_stop`` of each ``daemon.start`` row of the log in ``data``, in order."""
    return [detail["last_stop"] for detail in _starts(data)]


def _a_clean_run_before(data) -> None:
    """A run of the daemon on ``data`` that started (its row: ``none``) and stopped cleanly
    (its marker left): what the start standing by takes."""
    data.mkdir(exist_ok=True)
    core = build_core(_config(), data)
    try:
        record_start(core)
        record_stop(core)
    finally:
        core.close()


def _failing_starts(monkeypatch, failures: int) -> list[str]:
    """The history's look-back meets a full card at the first ``failures`` starts."""
    loads: list[str] = []
    load = EngineRunner._load_history

    def load_history(runner: EngineRunner) -> int:
        loads.append("try")
        if len(loads) <= failures:
            raise _full()
        return load(runner)

    monkeypatch.setattr(EngineRunner, "_load_history", load_history)
    return loads


def _standing_by_once(monkeypatch, *, stop_while_standing_by: bool) -> None:
    """``kiosk run``'s standby for the start's failure tries again at once; a stop comes
    while it stands by, or once the start it tried again is under way."""
    real = standing.core_or_standby

    async def core_or_standby(build, config, stopping, **kwargs):
        async def pause(_server, _delay):
            if stop_while_standing_by:
                stopping.set()

        core = await real(build, config, stopping, notifier=Notifier(None), pause=pause, **kwargs)
        if kwargs.get("failed") is not None:
            stopping.set()
        return core

    monkeypatch.setattr(standing, "core_or_standby", core_or_standby)


def _run_standing_by_once(data, monkeypatch, *, stop_while_standing_by: bool) -> list[str]:
    """``kiosk run`` on ``data``, after a run that stopped cleanly, whose first start meets a
    full card, standing by once (``_standing_by_once``); the look-back's tries."""
    _a_clean_run_before(data)
    loads = _failing_starts(monkeypatch, failures=1)
    _standing_by_once(monkeypatch, stop_while_standing_by=stop_while_standing_by)
    outcome: list[object] = []
    running = kiosk_run_thread(data, _config(), outcome)
    running.start()
    running.join(WAIT_S)
    assert outcome == [0], outcome
    return loads


@pytest.mark.slow
def test_a_start_that_stood_by_for_the_card_then_started_says_the_last_stop_was_clean(
    tmp_path, monkeypatch
):
    """The failed start had taken the clean stop's marker; it stood by in order, yet the
    start after it recorded ``last_stop: unclean``, as after a crash."""
    loads = _run_standing_by_once(tmp_path, monkeypatch, stop_while_standing_by=False)

    assert loads == ["try", "try"]
    assert _last_stops(tmp_path) == ["none", "clean"]


@pytest.mark.slow
def test_a_standby_for_the_starts_card_fault_stopped_in_order_is_a_clean_stop(
    tmp_path, monkeypatch
):
    """A stop (``systemctl stop kiosk``) while standing by for the start's card fault: the
    next start said ``last_stop: unclean``."""
    loads = _run_standing_by_once(tmp_path, monkeypatch, stop_while_standing_by=True)
    assert loads == ["try"]

    core = build_core(_config(), tmp_path)
    try:
        record_start(core)
    finally:
        core.close()
    assert _last_stops(tmp_path) == ["none", "clean"]


class _Server:
    """The standby server, serving nothing: the journal's lines are what is checked."""

    def __init__(self, config, standby, notifier, **_kwargs):
        self.standby, self.notifier, self.gate_obeyed = standby, notifier, True

    def status(self) -> str:
        return self.standby.reason

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def test_the_journal_says_the_start_failed_after_the_log_opened_not_that_it_cannot_open(
    monkeypatch, caplog
):
    """The standby's line for a card fault the start met after the log opened said "cannot
    open the event log" (its reason, the card's words, was right)."""

    monkeypatch.setattr(standing, "StandbyServer", _Server)

    def said(failed: Exception | None, *, stopping: bool, opens: bool = False) -> list[str]:
        caplog.clear()
        tries: list[str] = []
        opens_at = 1 if failed is not None else 2  # the log's own open failing once first

        async def pause(_server, _delay):
            if not opens:
                stop.set()

        def build():
            tries.append("try")
            if opens and len(tries) >= opens_at:
                return "the core"
            raise _full()

        async def scenario():
            if stopping:
                stop.set()
            return await standing.core_or_standby(
                build, _config(), stop, notifier=Notifier(None), pause=pause, failed=failed
            )

        stop = asyncio.Event()
        with caplog.at_level(logging.WARNING, logger="checkpoint.standby"):
            assert asyncio.run(scenario()) == ("the core" if opens else None)
        return [r.getMessage() for r in caplog.records if r.name == "checkpoint.standby"]

    for stopping in (False, True):
        (line,) = said(_full(), stopping=stopping)
        assert line.startswith("the start met the card's fault after the event log opened")
        assert "cannot open the event log" not in line and "database or disk is full" in line
        (line,) = said(None, stopping=stopping)  # the log's open itself: as it was
        assert line.startswith("cannot open the event log") and "disk is full" in line
    _, line = said(_full(), stopping=False, opens=True)
    assert line == "the event log opens: trying the start again after 1 failed tries: starting"
    _, line = said(None, stopping=False, opens=True)
    assert line == "the event log opens again after 1 failed tries: starting"


#: What the journal's standby line says failed when the log opened and the start met the card.
_FAILED_START = "the start met the card's fault after the event log opened"


def _standby_of(monkeypatch, failed: Exception | None):
    """The ``Standby`` that ``core_or_standby`` serves when the start met ``failed`` after
    the log opened (None: the log's open itself failing), a stop asked at its first pause."""
    served = []

    class Server:
        def __init__(self, config, standby, notifier, **_kwargs):
            self.standby, self.notifier = standby, notifier
            served.append(standby)

        async def start(self) -> None:
            return None

        async def stop(self) -> None:
            return None

    monkeypatch.setattr(standing, "StandbyServer", Server)

    def build():
        raise _full()

    async def scenario():
        stop = asyncio.Event()

        async def pause(_server, _delay):
            stop.set()

        await standing.core_or_standby(
            build, _config(), stop, notifier=Notifier(None), pause=pause, failed=failed
        )

    asyncio.run(scenario())
    (standby,) = served
    return standby


@pytest.mark.parametrize("address", ["192.168.1.77", "127.0.0.1"])
def test_health_and_the_console_say_the_start_failed_after_the_log_opened(monkeypatch, address):
    """Once the journal's line said that the start met the card's fault after the event log
    opened, public health still said "the event log cannot be opened" and the guard console
    "The kiosk cannot open its event log", though it had opened. They now say what failed,
    from what the journal's line says (``Standby.what_failed``)."""
    from fastapi.testclient import TestClient

    from ui.standby import create_standby_app

    standby = _standby_of(monkeypatch, _full())
    web = TestClient(create_standby_app(standby, "gate-1"), client=(address, 40000))
    health = web.get("/api/v1/health")
    console = web.get("/guard")
    assert health.status_code == 503 and console.status_code == 503
    detail = health.json()["devices"]["store"]["detail"]
    if address != "127.0.0.1":  # the public report: what failed and its kind
        assert detail == f"{_FAILED_START} (full)"
    page = console.text.replace("&#x27;", "'")
    assert "after its event log opened" in page and "通行记录已打开" in page
    assert "cannot open its event log" not in page and "无法打开通行记录" not in page
    for said in (detail, page, web.get("/api/v1/events").text):
        assert "cannot be opened" not in said and "cannot open the event log" not in said
    assert standby.what_failed() == _FAILED_START  # the journal's words (the test above)


def test_health_and_the_console_still_say_the_log_cannot_be_opened_when_it_did_not(
    monkeypatch,
):
    """A standby whose log never opened says so, as before."""
    from fastapi.testclient import TestClient

    from ui.standby import create_standby_app

    standby = _standby_of(monkeypatch, None)
    web = TestClient(create_standby_app(standby, "gate-1"), client=("192.168.1.77", 40000))
    detail = web.get("/api/v1/health").json()["devices"]["store"]["detail"]
    assert detail == "the event log cannot be opened (full)"
    assert "cannot open its event log" in web.get("/guard").text.replace("&#x27;", "'")


def test_a_try_whose_log_did_not_open_is_said_so_after_a_start_that_had_opened_it():
    """A standby for the start's card fault (the log had opened), then a try again whose log
    did not open (the card gone read-only): the journal said "the event log cannot be
    opened" while health and the console still said the log had opened (review of
    e29229be). What failed is the latest try's, and its change is worth a line."""
    from kiosk.standby import Standby

    standby = Standby("database or disk is full", "full", "2026-12-07T21:00:00Z", opened=True)
    assert not standby.failed_again("database or disk is full", "full", opened=True)
    assert standby.failed_again("database or disk is full", "full")  # the open failed
    assert standby.what_failed() == "cannot open the event log"  # the journal's words
    assert standby.detail(False) == "the event log cannot be opened (full)"


@pytest.mark.slow
def test_a_kill_after_the_standby_before_the_start_tried_again_records_reads_as_unclean(
    tmp_path, monkeypatch
):
    """``kiosk run`` left the clean stop's marker once the standby for the start's card fault
    turned into a start, before that start took it back (its record): a kill there (power
    cut, watchdog) while it read the card for the data volume and the TLS certificate made
    the next start say ``last_stop: clean``. The start tried again is told instead; the
    kill is simulated by copying the data dir as the card holds it then."""
    data, killed = tmp_path / "data", tmp_path / "killed"
    _a_clean_run_before(data)
    _failing_starts(monkeypatch, failures=1)
    _standing_by_once(monkeypatch, stop_while_standing_by=False)
    real = daemon_cmd.served_certificate
    calls: list[int] = []

    def served(config):
        calls.append(1)
        if len(calls) == 2:  # the start tried again, before its record: the kill
            shutil.copytree(data, killed)
        return real(config)

    monkeypatch.setattr(daemon_cmd, "served_certificate", served)
    outcome: list[object] = []
    running = kiosk_run_thread(data, _config(), outcome)
    running.start()
    running.join(WAIT_S)
    assert outcome == [0], outcome
    assert not (killed / STOPPED_MARKER).exists()
    core = build_core(_config(), killed)
    try:
        record_start(core)
    finally:
        core.close()
    assert _last_stops(killed) == ["none", "unclean"]
    assert _last_stops(data) == ["none", "clean"]  # not killed: the start tried again knew


@pytest.mark.slow
def test_a_card_that_stays_full_keeps_one_standby_its_pauses_growing_its_lines_once(
    tmp_path, monkeypatch, caplog
):
    """A card that stayed full for the start's look-back: each try opened the log, the start
    failed again and ``kiosk run`` stood by anew, the next try 5 s later each time (never
    growing, the tries counter at 1) and two error lines and a warning each time, though
    docs/cli.md says 5 s, then at most a minute apart, and a line per change of the reason."""
    loads = _failing_starts(monkeypatch, failures=4)
    real = standing.core_or_standby
    delays: list[float] = []
    tries: list[int] = []

    async def core_or_standby(build, config, stopping, **kwargs):
        async def pause(server, delay):
            delays.append(delay)
            tries.append(server.standby.tries)

        core = await real(build, config, stopping, notifier=Notifier(None), pause=pause, **kwargs)
        if len(delays) == 4:  # the fifth start runs: the test's stop once it has
            stopping.set()
        return core

    monkeypatch.setattr(standing, "core_or_standby", core_or_standby)
    outcome: list[object] = []
    running = kiosk_run_thread(tmp_path, _config(), outcome)
    with caplog.at_level(logging.WARNING, logger="checkpoint.standby"):
        running.start()
        running.join(WAIT_S)
    assert outcome == [0], outcome
    assert loads == ["try"] * 5
    assert delays == [5.0, 10.0, 20.0, 40.0]
    assert tries == [1, 2, 3, 4]
    lines = [r.getMessage() for r in caplog.records if r.name == "checkpoint.standby"]
    assert len(lines) == 4, lines
    assert lines[0].startswith("the start met the card's fault: ")
    assert lines[1].startswith("the start met the card's fault after the event log opened")
    assert lines[2] == "the event log opens: trying the start again after 1 failed tries: starting"
    assert lines[3] == "the start ran after 4 failed tries: starting"
    # One row, the start that ran's (each start tried wrote one before: review of c7c45973).
    (row,) = _starts(tmp_path)
    assert row["last_stop"] == "none"
    assert row["standby"]["kind"] == "full" and row["standby"]["tries"] == 4


def test_a_changed_reason_while_held_is_said_and_the_pauses_go_on(monkeypatch, caplog):
    """The standby held across the starts tried again: the same fault again says nothing,
    another reason says its line; the pauses go on growing from the step held."""

    monkeypatch.setattr(standing, "StandbyServer", _Server)
    held, delays = standing.Held(), []

    async def pause(_server, delay):
        delays.append(delay)

    async def stand_by(failed: Exception) -> object:
        return await standing.core_or_standby(
            lambda: "the core",
            _config(),
            asyncio.Event(),
            notifier=Notifier(None),
            pause=pause,
            failed=failed,
            held=held,
        )

    ro = sqlite3.OperationalError("attempt to write a readonly database")
    ro.sqlite_errorname = "SQLITE_READONLY"
    with caplog.at_level(logging.WARNING, logger="checkpoint.standby"):
        for failed in (_full(), _full(), ro):
            assert asyncio.run(stand_by(failed)) == "the core"
    lines = [r.getMessage() for r in caplog.records if r.name == "checkpoint.standby"]
    assert delays == [5.0, 10.0, 20.0]
    assert held.standby is not None and held.standby.tries == 3
    assert len(lines) == 4, lines  # the first standby's two, the read-only card's two
    assert "disk is full" in lines[0] and "readonly" in lines[2]
    assert lines[3] == "the event log opens: trying the start again after 3 failed tries: starting"
