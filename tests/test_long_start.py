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
from kiosk.store import EventLog, StoreFault

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


def _heard(told):
    return lambda done, of, failed=False: told.append((done, of, failed))


def _failing(path):
    """The pending step made to fail: a table holds the name its index is to have."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE events_unsynced_mono (x)")
    con.commit()
    con.close()
    return path


def test_the_log_says_each_pending_step_of_its_migration_and_nothing_when_current(tmp_path):
    path = _one_step_behind(tmp_path)
    told: list[tuple[int, int, bool]] = []
    log = EventLog(path, "gate-1", FakeClock(), "NORMAL", boot_id="t", on_migrating=_heard(told))
    log.open().close()
    assert told == [(0, 1, False), (1, 1, False)]
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


def test_a_failed_step_is_said_to_have_failed(tmp_path):
    """The log told its listener "over" (done == of) when a step failed as when all were
    applied, and the start said "the log's migration over; starting"."""
    path = _failing(_one_step_behind(tmp_path))
    told: list[tuple[int, int, bool]] = []
    log = EventLog(path, "gate-1", FakeClock(), "NORMAL", boot_id="t", on_migrating=_heard(told))
    with pytest.raises(StoreFault):
        log.open()
    assert told == [(0, 1, False), (0, 1, True)]


def test_a_start_whose_migration_failed_says_so_and_not_starting(tmp_path, systemd, caplog):  # noqa: F811
    path = _failing(_one_step_behind(tmp_path))
    long = LongStart(Notifier(systemd.env_value))
    with caplog.at_level(logging.WARNING, logger="checkpoint.notify"), pytest.raises(StoreFault):
        EventLog(
            path, "gate-1", FakeClock(), "NORMAL", boot_id="t", on_migrating=long.migrating
        ).open()
    assert systemd.messages() == [
        f"{EXTEND}\nSTATUS=migrating the log: 0 of 1",
        f"{EXTEND}\nSTATUS=the log's migration failed at step 1 of 1 (rolled back)",
    ]
    (said,) = [r for r in caplog.records if "migration failed" in r.getMessage()]
    assert said.levelname == "ERROR" and "over" not in said.getMessage()
    assert "at step 1 of 1" in said.getMessage() and "rolled back" in said.getMessage()
    long.migrating(2, 2, failed=True)  # once ended, said once
    assert systemd.messages() == []
