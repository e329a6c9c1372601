"""A long migration at start under systemd (``checkpoint.notify.LongStart``): the log's
migration says its progress (``EventLog``'s ``on_migrating``), and the daemon extends the
start timeout (``EXTEND_TIMEOUT_USEC``) and says "migrating the log: N of M" meanwhile, on a
real datagram socket standing in for ``$NOTIFY_SOCKET`` (``test_notify.FakeSystemd``)."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from test_notify import systemd  # noqa: F401 - the fixture

from checkpoint.notify import LongStart, Notifier
from kiosk.clock import FakeClock
from kiosk.store import EventLog

EXTEND = "EXTEND_TIMEOUT_USEC=30000000"
WAIT_S = 10  # a bound for a loaded machine, never reached when it works


def _one_step_behind(tmp_path):
    """A log whose last index (m009) a previous program did not have: one step pending."""
    path = tmp_path / "events.db"
    EventLog(path, "gate-1", FakeClock(), "NORMAL", boot_id="t").open().close()
    con = sqlite3.connect(path)
    con.execute("DROP INDEX IF EXISTS events_unsynced_mono")
    con.execute("DELETE FROM _sqlite_migrations WHERE name = 'm009_unsynced_by_mono'")
    con.commit()
    con.close()
    return path


def test_the_log_says_each_pending_step_of_its_migration_and_nothing_when_current(tmp_path):
    path = _one_step_behind(tmp_path)
    told: list[tuple[int, int]] = []
    log = EventLog(
        path, "gate-1", FakeClock(), "NORMAL", boot_id="t", on_migrating=lambda *a: told.append(a)
    )
    log.open().close()
    assert told == [(0, 1), (1, 1)]
    con = sqlite3.connect(path)
    assert con.execute("SELECT 1 FROM sqlite_master WHERE name = 'events_unsynced_mono'").fetchone()
    con.close()
    told.clear()
    log.open().close()
    assert told == []


def test_a_migration_at_start_extends_systemds_start_timeout(tmp_path, systemd, caplog):  # noqa: F811
    """Before, a migration longer than TimeoutStartSec (m009 on 1.6 M rows: ~95 s on a Pi 3B)
    was killed, rolled back and begun again at each restart, the gate locked for good."""
    long = LongStart(Notifier(systemd.env_value), every_s=0.05, extend_s=30)
    with caplog.at_level(logging.WARNING, logger="checkpoint.notify"):
        long.migrating(0, 2)
        assert systemd.wait_message(WAIT_S) == f"{EXTEND}\nSTATUS=migrating the log: 0 of 2"
        long.migrating(1, 2)
        said = [systemd.wait_message(WAIT_S) for _ in range(3)]  # the step's, then a period's
        assert said[-1] == said[-2] == f"{EXTEND}\nSTATUS=migrating the log: 1 of 2"
        long.migrating(2, 2)
    tail = [systemd.wait_message(WAIT_S)]
    while tail[-1] not in (None, f"{EXTEND}\nSTATUS=the log's migration over; starting"):
        tail.append(systemd.wait_message(WAIT_S))  # a period's, sent as it ended
    assert tail[-1] == f"{EXTEND}\nSTATUS=the log's migration over; starting"
    assert "migrating the event log (2 steps)" in caplog.text
    assert "the event log's migration (2 steps) over" in caplog.text


def test_the_start_says_the_logs_own_migration(tmp_path, systemd):  # noqa: F811
    """The log's migration, heard by ``LongStart`` as the daemon wires it (``build_core``'s
    ``on_migrating``)."""
    path = _one_step_behind(tmp_path)
    long = LongStart(Notifier(systemd.env_value))
    EventLog(
        path, "gate-1", FakeClock(), "NORMAL", boot_id="t", on_migrating=long.migrating
    ).open().close()
    assert systemd.messages() == [
        f"{EXTEND}\nSTATUS=migrating the log: 0 of 1",
        f"{EXTEND}\nSTATUS=the log's migration over; starting",
    ]


def test_a_long_start_extends_by_more_than_it_waits():
    with pytest.raises(ValueError, match="every_s"):
        LongStart(Notifier(None), every_s=30, extend_s=30)
