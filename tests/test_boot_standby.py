"""A kiosk whose card keeps its event log from opening at start: it stands by, says why on
every face, and starts by itself once the log opens, instead of systemd restarting it every
3 s for ever (kiosk.standby, checkpoint.standby, docs/operations.md).

The card's faults come in through the store's seams (``_open_connection``, ``_read_only``),
as the other card tests do: no mounts."""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3

import httpx
import pytest

from checkpoint import standby as standing
from checkpoint.app import build_core
from checkpoint.cli import daemon_cmd
from checkpoint.notify import Notifier
from kiosk import store as kiosk_store
from kiosk.config import parse_config
from kiosk.standby import card_failure
from kiosk.store import StoreFault


def _config():
    return parse_config({"site": {"kiosk_id": "gate-1"}, "web": {"port": 0}})


def _sqlite_error(name: str, text: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorname = name
    return exc


@pytest.fixture
def card(monkeypatch):
    """The card under the log: ``card["fault"]`` is the SQLite error its writer's connection
    meets (None: it works); ``card["read_only"]`` what its file system says."""
    state: dict[str, object] = {"fault": None, "read_only": False}
    connect = kiosk_store._open_connection

    def open_connection(path, timeout_s):
        if state["fault"] is not None:
            raise state["fault"]
        return connect(path, timeout_s)

    monkeypatch.setattr(kiosk_store, "_open_connection", open_connection)
    monkeypatch.setattr(kiosk_store, "_read_only", lambda _path: bool(state["read_only"]))
    return state


def _standing_by(data, pause, notifier=None):
    """``kiosk run``'s start on ``data`` with ``pause`` between tries; the core or None."""
    config = _config()

    async def scenario():
        stopping = asyncio.Event()
        got = await standing.core_or_standby(
            lambda: build_core(config, data),
            config,
            stopping,
            notifier=notifier or Notifier(None),
            pause=lambda server, delay: pause(server, delay, stopping),
        )
        return got

    return asyncio.run(scenario())


def test_a_card_read_only_at_boot_stands_by_saying_why_then_starts_once_it_is_writable(
    tmp_path, card, caplog
):
    """The card came up read-only after a power cut (a failed check): the daemon exited at
    start and systemd restarted it every 3 s for ever, the screens dark, the reason only in
    the journal. It stands by: the kiosk screen says to see the guard, the console and
    health say why and what mends it, nothing is decided; once the card takes writes again
    the daemon starts by itself, without a restart."""
    build_core(_config(), tmp_path).close()  # a kiosk that ran before
    card["fault"] = _sqlite_error("SQLITE_READONLY", "attempt to write a readonly database")
    card["read_only"] = True
    seen: dict[str, httpx.Response] = {}
    delays: list[float] = []

    async def pause(server, delay, _stopping):
        delays.append(delay)
        if len(delays) == 1:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as web:
                for path in ("/kiosk", "/kiosk/watch", "/guard", "/api/v1/health"):
                    seen[path] = await web.get(path)
                seen["events"] = await web.get("/api/v1/events?after=0")
        elif len(delays) == 3:  # a reboot's check mended it
            card["fault"], card["read_only"] = None, False

    with caplog.at_level(logging.INFO, logger="checkpoint.standby"):
        core = _standing_by(tmp_path, pause)
    try:
        assert core is not None and core.store.health().state == "ok"
        core.store.append(kiosk_store.EventDraft(direction="in", decision="deny"))
    finally:
        core.close()
    assert delays == [5.0, 10.0, 20.0]  # not every 3 s: 5 s, doubling, at most a minute
    screen = seen["/kiosk"]
    assert screen.status_code == 503 and "please see the guard" in screen.text
    assert 'http-equiv="refresh"' in screen.text  # the real page comes back by itself
    assert "read-only" not in screen.text  # the gate's public screen: no technical words
    assert seen["/kiosk/watch"].status_code == 200  # kiosk-screen leaves the browser be
    console = seen["/guard"].text
    assert "the gate stays locked" in console and "paper register" in console
    assert "sudo reboot" in console and "the file system is read-only" in console
    health = seen["/api/v1/health"]
    assert health.status_code == 503
    report = health.json()
    assert report["deciding"] is False and report["standby"]["kind"] == "read_only"
    assert report["devices"]["store"]["state"] == "fault"
    assert "the file system is read-only" in report["devices"]["store"]["detail"]
    assert seen["events"].status_code == 503
    lines = [r.getMessage() for r in caplog.records if r.name == "checkpoint.standby"]
    assert len(lines) == 2, lines  # the standby, then the start: not one line per try
    assert "standing by" in lines[0] and "read-only" in lines[0]
    assert "opens again after 3 failed tries" in lines[1]


def test_a_damaged_last_page_at_boot_stands_by_with_the_damaged_log_fix(tmp_path, card):
    """The last page of kiosk.db read back with an I/O error: the same restart storm. The
    console names the damage and verify-log; the unit's status says it stands by."""
    build_core(_config(), tmp_path).close()
    card["fault"] = _sqlite_error("SQLITE_IOERR_READ", "disk I/O error")
    said: dict[str, str] = {}

    async def pause(server, _delay, stopping):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as web:
            said["console"] = (await web.get("/guard/passes")).text
        said["status"] = server.status()
        stopping.set()  # systemctl stop while standing by

    assert _standing_by(tmp_path, pause) is None
    assert "verify-log" in said["console"] and "SQLITE_IOERR_READ" in said["console"]
    assert said["status"].startswith(
        "standing by, not deciding, the gate locked: store_fault: cannot open kiosk.db"
    )


def test_a_start_failure_the_card_does_not_cause_still_ends_the_start(tmp_path):
    """A config naming another kiosk's log is the operator's to fix: no standing by."""

    def build():
        raise StoreFault("store_fault", "kiosk.db is the event log of kiosk 'gate-1'")

    async def scenario():
        await standing.core_or_standby(build, _config(), asyncio.Event())

    with pytest.raises(StoreFault, match="event log of kiosk"):
        asyncio.run(scenario())


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (
            StoreFault(
                "store_fault",
                "cannot open kiosk.db (SQLITE_READONLY: the file system is read-only)",
            ),
            "read_only",
        ),
        (_sqlite_error("SQLITE_CORRUPT", "database disk image is malformed"), "damaged"),
        (_sqlite_error("SQLITE_FULL", "database or disk is full"), "full"),
        (OSError(errno.EROFS, "Read-only file system"), "read_only"),
        (OSError(errno.EIO, "Input/output error"), "damaged"),
        (
            StoreFault(
                "store_fault",
                "cannot open kiosk.db (SQLITE_READONLY: kiosk.db is not"
                " writable by this user (owner uid 0))",
            ),
            "unwritable",
        ),
        (_sqlite_error("SQLITE_BUSY", "database is locked"), None),
        (ValueError("a bug"), None),
    ],
)
def test_which_start_failures_are_the_cards(exc, kind):
    assert card_failure(exc) == kind


def test_the_data_dir_lock_is_taken_on_a_card_mounted_read_only(tmp_path, monkeypatch):
    """``kiosk run`` locks its data dir first: on a read-only card the lock file cannot be
    opened for writing, and the start ended there, before the log could stand by."""
    (tmp_path / daemon_cmd.LOCK_FILE).write_text("123\n")
    real_open = daemon_cmd.os.open

    def read_only_open(path, flags, *mode):
        if flags & (daemon_cmd.os.O_RDWR | daemon_cmd.os.O_WRONLY | daemon_cmd.os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *mode)

    monkeypatch.setattr(daemon_cmd.os, "open", read_only_open)
    fd = daemon_cmd.hold_data_dir(tmp_path)
    try:
        with pytest.raises(daemon_cmd.CliError, match="another kiosk daemon"):
            daemon_cmd.hold_data_dir(tmp_path)  # still one daemon per data dir
    finally:
        fd.close()


def test_a_stop_asked_while_a_retry_opens_the_log_ends_the_standby_not_a_start(tmp_path, card):
    """``systemctl stop kiosk`` came while a try of the log was under way (on a failing card
    an open can take seconds): the try succeeded and the daemon started in full, its devices
    opened and the gate commanded, only to stop at once. The stop is heeded: the core just
    built is closed and nothing starts."""
    build_core(_config(), tmp_path).close()
    card["fault"] = _sqlite_error("SQLITE_FULL", "database or disk is full")
    config = _config()
    built: list = []

    async def scenario():
        stopping = asyncio.Event()

        def build():
            if len(built) == 1:  # the retry: the card has room again, and a stop comes
                card["fault"] = None
                stopping.set()
            built.append(None)
            core = build_core(config, tmp_path)
            built[-1] = core
            return core

        async def pause(_server, _delay):
            return None

        return await standing.core_or_standby(
            build, config, stopping, notifier=Notifier(None), pause=pause
        )

    assert asyncio.run(scenario()) is None
    assert len(built) == 2 and built[0] is None
    assert built[1].store.health().detail == "event log is not open"  # closed behind the stop


def test_a_stop_asked_while_the_first_open_fails_stands_nothing_up(tmp_path, card, monkeypatch):
    """``systemctl stop kiosk`` during the start, while the card made the first open fail:
    the standby server was started all the same (the port bound, READY=1 sent to a unit
    that is stopping) only to be stopped at its first pause. The stop is heeded first."""
    build_core(_config(), tmp_path).close()
    card["fault"] = _sqlite_error("SQLITE_FULL", "database or disk is full")
    config = _config()
    stood_up: list[object] = []
    monkeypatch.setattr(standing, "StandbyServer", lambda *a, **k: stood_up.append(a))

    async def scenario():
        stopping = asyncio.Event()

        def build():
            stopping.set()  # the SIGTERM comes while the open is under way
            return build_core(config, tmp_path)

        return await standing.core_or_standby(build, config, stopping, notifier=Notifier(None))

    assert asyncio.run(scenario()) is None
    assert stood_up == []
