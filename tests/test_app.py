"""Composition: the daemon starts its parts in order, serves, and stops cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from test_notify import daemon_running, systemd  # noqa: F401 - the fixture

from checkpoint.app import Daemon, build_core
from checkpoint.notify import Notifier
from kiosk.config import parse_config

#: The `kiosk` command as a module of this interpreter.
KIOSK = [sys.executable, "-m", "checkpoint"]


def trust_a_key(data: os.PathLike[str] | str) -> None:
    """A pass-checking ``kiosk run`` refuses to start without a trusted issuer key."""
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.passes import public_key_pem

    trust = Path(data) / "trust"
    trust.mkdir(parents=True, exist_ok=True)
    (trust / "office.pub").write_bytes(public_key_pem(Ed25519PrivateKey.generate().public_key()))


def _config(**web):
    return parse_config({"site": {"kiosk_id": "test-gate"}, "web": {"port": 0, **web}})


def test_build_core_wires_every_part_to_one_event_log(data_dir):
    core = build_core(_config(), data_dir)
    try:
        assert core.runner.store is core.store
        assert core.store.path == data_dir / "kiosk.db"
        assert (data_dir / "trust").is_dir()
        tables = set(core.store.reader().table_names())
        # lists, tokens and accounts migrate into the same database as the events
        assert {"events", "audit", "api_tokens", "guard_accounts"} <= tables
        health = core.health()
        assert health["kiosk_id"] == "test-gate"
        assert health["deciding"] is False  # not started: nothing is deciding yet
        assert set(health["devices"]) >= {"thermometer", "gate", "store"}
    finally:
        core.close()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_daemon_serves_health_then_stops_in_order_within_two_seconds(data_dir, tmp_path):
    sock_path = tmp_path / "notify.sock"
    import socket

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(sock_path))
    listener.settimeout(5)

    async def scenario():
        core = await asyncio.to_thread(build_core, _config(), data_dir)
        daemon = Daemon(core, notifier=Notifier(str(sock_path)))
        await daemon.start()
        try:
            async with httpx.AsyncClient(base_url=daemon.url) as client:
                for _ in range(100):
                    response = await client.get("/api/v1/health")
                    if response.status_code == 200:
                        break
                    await asyncio.sleep(0.05)
                assert response.status_code == 200
                body = response.json()
                assert body["deciding"] is True
                assert body["devices"]["store"]["state"] == "ok"
                assert body["clock"]["synced"] in (True, False)
        finally:
            await asyncio.wait_for(daemon.stop(), 2.0)
        return core

    core = asyncio.run(scenario())
    messages = []
    listener.setblocking(False)  # the daemon has stopped: whatever it sent is queued already
    while True:
        try:
            messages.append(listener.recv(4096).decode())
        except BlockingIOError:
            break
    assert any("READY=1" in m for m in messages)
    assert any("STOPPING=1" in m for m in messages)
    # the gate was left commanded locked
    assert core.devices.gate.is_open is False


def _wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _get(url: str, **kw):
    try:
        return httpx.get(url, timeout=2, **kw)
    except httpx.HTTPError:
        return None


@pytest.mark.slow
def test_kiosk_run_stops_cleanly_on_sigterm(tmp_path, systemd):  # noqa: F811
    """Run as systemd runs it (``test_notify.daemon_running``): started at its READY=1 within
    the unit's ``TimeoutStartSec``, on the port the system gave it, not on a fixed port
    within a guessed 30 s; SIGTERM then ends it with exit 0 within ``TimeoutStopSec``."""
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('[site]\nkiosk_id = "sig-gate"\n[web]\nport = 0\n')
    trust_a_key(tmp_path / "d")
    journal = tmp_path / "journal.log"
    command = [*KIOSK, "run", "--config", str(cfg), "--data", str(tmp_path / "d")]
    with daemon_running(command, systemd, journal) as health:
        assert health["kiosk_id"] == "sig-gate"
    err = journal.read_text()
    assert "kiosk stopped" in err
    assert "Traceback" not in err
    verify = subprocess.run(
        [*KIOSK, "verify-log", "--db", str(tmp_path / "d" / "kiosk.db")],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stderr


@pytest.mark.slow
def test_demo_serves_all_three_faces_and_visitors_produce_events(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [*KIOSK, "demo", "--port", "0", "--data", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        banner = ""
        deadline = time.monotonic() + 30
        while "Ctrl-C" not in banner and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            banner += line
        base = re.search(r"kiosk screen : (http://[\d.:]+)/kiosk", banner).group(1)
        token = re.search(r"API token\s+: (\S+)", banner).group(1)
        assert re.search(r"login: guard / \S+\)", banner)

        assert _get(base + "/kiosk").status_code == 200
        guard = _get(base + "/guard", follow_redirects=False)
        assert guard.status_code in (302, 303, 307, 401)
        assert _get(base + "/api/v1/health").status_code == 200

        def events():
            r = _get(base + "/api/v1/events?after=0", headers={"Authorization": f"Bearer {token}"})
            return r is not None and r.status_code == 200 and r.json()["events"]

        first = _wait_for(events, 40, "the first scripted visitor's event")
        assert first[0]["decision"] == "pass"
        assert first[0]["kiosk_id"] == "demo-gate"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert json.loads(json.dumps(first))  # events are plain JSON


def test_run_with_an_unusable_trust_key_fails_with_one_line(tmp_path, capsys, monkeypatch):
    from checkpoint.cli import main

    monkeypatch.setattr("checkpoint.app.settle_trust_wait", lambda _s: None)  # still no key

    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[web]\nport = 0\n")
    data = tmp_path / "data"
    (data / "trust").mkdir(parents=True)
    (data / "trust" / "office.pub").write_text("not a key\n")
    # A configuration error (check-config's too): exit 2, so systemd does not restart it.
    assert main(["run", "--config", str(cfg), "--data", str(data), "--log-level", "error"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kiosk run: cannot start:")


def test_run_with_a_bad_config_is_a_usage_error(tmp_path, capsys):
    from checkpoint.cli import main

    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[web]\nport = 99999\n")
    assert main(["run", "--config", str(cfg), "--data", str(tmp_path)]) == 2
    assert "web.port" in capsys.readouterr().err


def test_health_is_503_until_the_engine_is_deciding(client, core):
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    body = response.json()
    assert body["deciding"] is False
    assert body["devices"]["thermometer"]["state"] in ("ok", "degraded", "fault")
    assert body["version"] == core.version


def test_store_fixture_appends_and_verifies(store):
    from kiosk.store import EventDraft

    event = store.append(EventDraft(direction="in", decision="deny", reasons=("fever",)))
    assert event.seq == 1 and store.verify().ok


@pytest.mark.slow
def test_kiosk_run_speaks_the_systemd_notify_protocol(tmp_path):
    """The real daemon process: READY=1 once serving, WATCHDOG=1 while the loop runs,
    STOPPING=1 on SIGTERM (what kiosk.service's Type=notify and WatchdogSec rely on)."""
    import socket

    sock_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(sock_path))
    listener.settimeout(30)
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[web]\nport = 0\n")
    trust_a_key(tmp_path / "d")
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="400000")
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [*KIOSK, "run", "--config", str(cfg), "--data", str(tmp_path / "d")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        messages: list[str] = []
        while not any("READY=1" in m for m in messages):
            messages.append(listener.recv(4096).decode())
        listener.settimeout(5)
        pings = 0
        while pings < 3:
            if "WATCHDOG=1" in listener.recv(4096).decode():
                pings += 1
        proc.send_signal(signal.SIGTERM)
        while True:
            message = listener.recv(4096).decode()
            if "STOPPING=1" in message:
                break
        rc = proc.wait(timeout=5)
        assert rc == 0, f"exit {rc}: {proc.stderr.read()[-3000:]}"
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()


@pytest.fixture
def one_passage(data_dir):
    """A core on a fake clock holding one passage (household H-1), and that clock: what the
    daemon's hourly purge works on."""
    from datetime import UTC, datetime

    from kiosk.clock import FakeClock
    from kiosk.store import EventDraft

    clock = FakeClock(start=datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
    core = build_core(_config(), data_dir, clock)
    try:
        core.store.append(EventDraft(direction="in", decision="pass", household="H-1"))
        yield core, clock
    finally:
        core.close()


def _purge_warning(core, caplog):
    """The daemon's one purge check, and the one line it logged."""
    with caplog.at_level("WARNING", logger="checkpoint.app"):
        Daemon(core, notifier=Notifier(None)).purge_once()
    [warning] = [r for r in caplog.records if r.name == "checkpoint.app"]
    return warning


def _households(core) -> list[str | None]:
    return [e["household"] for e in core.store.events()]


def test_the_daemons_purge_on_an_unsynchronised_clock_is_a_warning_and_purges_nothing(
    one_passage, caplog
):
    """Before: the daemon's hourly purge dated by a clock weeks ahead (booted without
    network) nulled personal fields the site must keep; now it skips with one warning."""
    from datetime import UTC, datetime

    core, clock = one_passage
    clock.is_synced = False
    clock.set_wall(datetime(2026, 5, 1, tzinfo=UTC))  # past retention, but by a bad clock
    warning = _purge_warning(core, caplog)
    assert "retention purge skipped" in warning.getMessage()
    assert "not synchronised" in warning.getMessage() and warning.exc_info is None
    assert _households(core) == ["H-1"]
    clock.is_synced = True  # NTP answered: the next hourly check purges
    Daemon(core, notifier=Notifier(None)).purge_once()
    assert _households(core) == [""]  # emptied: it had one


def test_the_daemons_purge_on_a_full_card_is_one_warning_line_and_purges_later(
    one_passage, caplog, monkeypatch
):
    """Before: a purge that could not write (a full card) left the hourly loop to log the
    whole StoreFault traceback every hour; now it is one warning naming the fault, and the
    next check purges once the card has room."""
    from datetime import UTC, datetime

    from kiosk.store import StoreFault

    core, clock = one_passage
    clock.set_wall(datetime(2026, 5, 1, tzinfo=UTC))  # past retention

    def full(*_args: object, **_kwargs: object) -> None:
        raise StoreFault("store_fault", "database or disk is full (SQLITE_FULL)")

    with monkeypatch.context() as patch:
        patch.setattr(core.store, "submit_audited", full)
        warning = _purge_warning(core, caplog)
    assert "retention purge failed" in warning.getMessage()
    assert "SQLITE_FULL" in warning.getMessage() and warning.exc_info is None
    assert _households(core) == ["H-1"]
    Daemon(core, notifier=Notifier(None)).purge_once()  # room again: purged
    assert _households(core) == [""]  # emptied: it had one


def test_the_daemons_purge_failing_otherwise_shows_in_health(one_passage, monkeypatch):
    """Before: a purge that failed on anything but the card (a day the freeze before it could
    not read) was logged and tried again every hour, and health never said so: no refusal
    was noted, so ``retention.overdue`` stayed null while personal data past retention
    stayed. Now it is noted as ``failed`` and shows as overdue after two days of it."""
    from datetime import UTC, datetime

    import kiosk.retention

    core, clock = one_passage
    clock.set_wall(datetime(2026, 5, 1, tzinfo=UTC))  # past retention

    def broken(*_args: object, **_kwargs: object) -> None:
        raise ValueError("a day that cannot be read")

    monkeypatch.setattr(kiosk.retention, "purge", broken)
    daemon = Daemon(core, notifier=Notifier(None))
    with pytest.raises(ValueError):
        daemon.purge_once()
    assert core.purge_refused is not None and core.purge_refused["cause"] == "failed"
    clock.advance(3 * 86400)
    with pytest.raises(ValueError):
        daemon.purge_once()
    assert core.health()["retention"]["overdue"]["cause"] == "failed"


def test_the_daemon_decides_on_a_list_imported_beside_it(data_dir, tmp_path, capsys):
    """Before: a quarantine list applied with `kiosk lists import --apply` (kiosk-admin,
    daemon running) was in the database but not at the gate until the daemon restarted."""
    from datetime import date

    from checkpoint.cli import main

    core = build_core(_config(), data_dir)
    try:
        sheet = tmp_path / "quarantine.csv"
        sheet.write_text("household,holder,from,until\n1-1,,2026-03-01,2026-03-14\n")
        assert main(["lists", "import", str(sheet), "--apply", "--data", str(data_dir)]) == 0
        Daemon(core, notifier=Notifier(None)).lists_once()
        assert core.lists.current.quarantine_for("1-1", "Li", date(2026, 3, 2)) is not None
    finally:
        core.close()


def test_a_list_check_failing_every_5_s_is_one_traceback_and_its_end_one_line(
    data_dir, caplog, monkeypatch
):
    """A failing card that refuses reads: the daemon's list check every 5 s logged a traceback
    each time, 720 an hour in the journal, for as long as the card kept failing."""
    import sqlite3

    core = build_core(_config(), data_dir)
    try:
        daemon = Daemon(core, notifier=Notifier(None))
        failing = [True]
        real = core.lists.reload_if_changed

        def reload_if_changed() -> bool:
            if failing[0]:
                raise sqlite3.OperationalError("disk I/O error")
            return real()

        monkeypatch.setattr(core.lists, "reload_if_changed", reload_if_changed)
        caplog.set_level("INFO", logger="checkpoint.app")
        for _ in range(720):  # an hour of checks
            daemon.lists_check()
        lines = [r for r in caplog.records if r.name == "checkpoint.app"]
        assert len(lines) == 1 and lines[0].exc_info is not None
        failing[0] = False
        daemon.lists_check()
        daemon.lists_check()
        lines = [r for r in caplog.records if r.name == "checkpoint.app"]
        assert [r.levelname for r in lines] == ["ERROR", "INFO"]
    finally:
        core.close()
